/** A Cloud Tasks emulator: the real google.cloud.tasks.v2 gRPC API, in memory, dispatching HTTP tasks for real. */
export { startCloudTasksEmulator, type CloudTasksEmulator, type IdleOptions } from './emulator';
export type { CloudTasksEmulatorOptions } from './options';
export { tasksClientFor, type EmulatorAddress } from './client';
export { seededRandom, type FaultOptions, type RandomSource } from './faults';
export type { EmulatorStats } from './stats';
export { unsignedOidcToken, type OidcTokenFor, type OidcTokenRequest, type OAuthTokenFor, type OAuthTokenRequest } from './tokens';
export type { DeadlineRange } from './task-input';
export { retryDelayMs } from './backoff';
export type { RetryConfig } from './model';
