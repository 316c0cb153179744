/** What the `dsmigrate emulator` command (src/cli) takes from the emulators: the only way in from src/. */
import type { LocalEmulators, LocalEmulatorsOptions } from './local';

export type { LocalEmulators, LocalEmulatorsOptions } from './local';
export { EMULATOR_FLAVOURS, EmulatorSetupError, type EmulatorFlavour } from './datastore-emulator';
export type { CloudTasksEmulatorOptions } from './cloud-tasks';

/** Loads the emulators (the Cloud Tasks one brings gRPC and its protos) only when asked to start them, not at every start of the CLI. */
export async function startLocalEmulators(options: LocalEmulatorsOptions): Promise<LocalEmulators> {
  const local = await import('./local');
  return local.startLocalEmulators(options);
}
