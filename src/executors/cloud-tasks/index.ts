/**
 * The Cloud Tasks executor: the lifecycle's second driver. `startRun` plans a run under its lease and
 * enqueues its first task; the `Pipeline` (run by the worker endpoint, src/worker) carries it on one
 * task at a time; `followRun` watches it.
 */
export { TaskDispatcher, type DispatchTarget, type EnqueueOutcome } from './dispatcher';
export { decodePayload, encodePayload, MalformedPayloadError, MAX_PAYLOAD_BYTES, type StartPayload, type SlicePayload, type TaskPayload } from './payload';
export { taskIdFor } from './task-name';
export { signBody, verifySignature, SIGNATURE_HEADER, type SignatureVerdict } from './hmac';
export { parseQueuePath, type QueuePath } from './queue-path';
export { ensureQueue, DEFAULT_QUEUE_SETTINGS, type QueueSettings, type QueueCheck } from './queue';
export { createTasksClient, cloudTasksError, type TasksApi } from './tasks-api';
export { resolveDispatchSettings, resolveWorkerSettings, type CloudTasksConfig, type DispatchAuth, type DispatchSettings, type WorkerAuth, type WorkerSettings } from './settings';
export { Pipeline, type PipelineDeps, type StepOutcome } from './pipeline';
export { startRun, type StartRunOptions, type StartedRun } from './start';
export { dispatchOf, type DispatchSpec, type DispatchAuthSpec } from './dispatch-spec';
