/**
 * The Cloud Tasks side of a run: the worker endpoint that runs tasks, the pipeline that moves a run
 * from operation to operation and migration to migration, and the `migrate` side that starts a run
 * and follows it.
 */
export { createWorker, startWorker, type WorkerOptions, type RunningWorker } from './worker';
export { createWorkerHandler, jsonLog, type RequestHandler, type WorkerHandlerOptions, type WorkerLogEntry } from './handler';
export { authenticatorFor, hmacAuthenticator, oidcAuthenticator, type Authenticator, type AuthResult, type CertSource } from './auth';
export { Pipeline, isPermanent, type PipelineDeps, type StepOutcome } from './pipeline';
export { startRun, type StartRunOptions, type StartedRun } from './start';
export { followRun, type FollowOptions } from './follow';
export { startWorkerServer, type WorkerServer } from './server';
export { shardedEngine } from './sharded-engine';
export type { ShardEngine, PlanView, OperationTotals } from './engine';
export { loadRun, RUN_STATE_KIND, type RunState, type RunStatus } from './run-state';
export { RunLease, runOwner } from './lease';
