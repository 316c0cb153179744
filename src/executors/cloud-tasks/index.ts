/** The Cloud Tasks executor: shard slices as HTTP tasks to the worker (src/worker). */
export { CloudTasksExecutor, type DispatchTarget, type EnqueueOutcome } from './executor';
export { decodePayload, encodePayload, MalformedPayloadError, MAX_PAYLOAD_BYTES, type PlanPayload, type SlicePayload, type TaskPayload } from './payload';
export { taskIdFor } from './task-name';
export { signBody, verifySignature, SIGNATURE_HEADER, type SignatureVerdict } from './hmac';
export { parseQueuePath, taskPath, type QueuePath } from './queue-path';
export { ensureQueue, DEFAULT_QUEUE_SETTINGS, type QueueSettings, type QueueCheck } from './queue';
export { createTasksClient, cloudTasksError, type TasksApi } from './tasks-api';
export {
  resolveDispatchSettings,
  resolveWorkerSettings,
  type CloudTasksConfig,
  type DispatchAuth,
  type DispatchSettings,
  type WorkerAuth,
  type WorkerSettings,
} from './settings';
