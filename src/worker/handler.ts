import type { IncomingMessage, ServerResponse } from 'node:http';
import { decodePayload, MalformedPayloadError, MAX_PAYLOAD_BYTES, taskPath, type QueuePath, type TaskPayload, type TasksApi } from '../executors/cloud-tasks';
import { errorMessage } from '../errors';
import type { Authenticator } from './auth';
import { BodyTooLargeError, headerValue, readBody, sendJson } from './http';
import type { Pipeline } from './pipeline';

export type Severity = 'INFO' | 'WARNING' | 'ERROR';

/** One line per request; printed as JSON, which Cloud Logging reads as a structured entry. */
export interface WorkerLogEntry {
  severity: Severity;
  message: string;
  status: number;
  task?: string;
  payload?: TaskPayload;
}

export interface WorkerHandlerOptions {
  pipeline: Pipeline;
  authenticator: Authenticator;
  /** With `queue`, lets the worker delete a permanently bad task so Cloud Tasks stops retrying it. */
  tasks?: TasksApi;
  /** The project and location of the queue tasks come from (the queue's own id arrives in a header). */
  queue?: QueuePath;
  log?: (entry: WorkerLogEntry) => void;
}

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

export function jsonLog(entry: WorkerLogEntry): void {
  process.stdout.write(`${JSON.stringify({ ...entry, component: 'dsmigrate-worker' })}\n`);
}

/**
 * The worker endpoint, as a plain node:http handler (express and fastify accept it too). Every
 * request is authenticated before anything else is looked at. Answers:
 * - 2xx: the step was taken, was already taken, or failed for good (the failure is recorded). Cloud
 *   Tasks then deletes the task.
 * - 401/403: not from our Cloud Tasks queue; nothing was read or changed.
 * - 400/413: an authenticated request whose body is not a task of ours. It can never succeed, and
 *   Cloud Tasks retries every non-2xx answer, so the worker first deletes the task through the API
 *   (allowed while it is being dispatched), using the X-CloudTasks-QueueName and -TaskName headers.
 * - 500: anything else (Datastore unavailable, a worker with other migration files): retried with
 *   the queue's backoff, and safe to retry because every step is idempotent.
 */
export function createWorkerHandler(options: WorkerHandlerOptions): RequestHandler {
  const log = options.log ?? jsonLog;
  return (req, res) => {
    void handle(req, res).catch((error) => {
      log({ severity: 'ERROR', message: `worker error: ${errorMessage(error)}`, status: 500 });
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
    });
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const task = headerValue(req, 'x-cloudtasks-taskname');
    const answer = (status: number, severity: Severity, message: string, payload?: TaskPayload, body: Record<string, unknown> = {}): void => {
      log({ severity, message, status, task, payload });
      sendJson(res, status, { ...body, message });
    };

    let body: Buffer;
    try {
      body = await readBody(req, MAX_PAYLOAD_BYTES);
    } catch (error) {
      if (!(error instanceof BodyTooLargeError)) throw error;
      // Not authenticated yet (the signature covers the body): refuse without deleting anything.
      return answer(413, 'WARNING', `rejected: ${error.message}`);
    }
    const auth = await options.authenticator.authenticate({ headers: req.headers, body });
    if (!auth.ok) return answer(auth.status, 'WARNING', `unauthenticated request rejected (${auth.status}): ${auth.reason}`);
    if (req.method !== 'POST') return answer(405, 'WARNING', `method ${req.method} not allowed`);

    let payload: TaskPayload;
    try {
      payload = decodePayload(body);
    } catch (error) {
      if (!(error instanceof MalformedPayloadError)) throw error;
      const removal = await deleteBadTask(req);
      return answer(400, 'ERROR', `${error.message}; ${removal}`);
    }

    try {
      const outcome = await options.pipeline.run(payload);
      answer(200, outcome.result === 'failed' ? 'ERROR' : 'INFO', `${payload.type} ${payload.migration}#${payload.op}: ${outcome.result}: ${outcome.detail}`, payload, { result: outcome.result });
    } catch (error) {
      answer(500, 'ERROR', `${payload.type} ${payload.migration}#${payload.op} will be retried: ${errorMessage(error)}`, payload);
    }
  }

  /** Deletes the task being answered, so that a permanently bad one is not retried; says what happened. */
  async function deleteBadTask(req: IncomingMessage): Promise<string> {
    const queueId = headerValue(req, 'x-cloudtasks-queuename');
    const taskId = headerValue(req, 'x-cloudtasks-taskname');
    if (!queueId || !taskId) return 'not a Cloud Tasks dispatch, nothing to delete';
    if (!options.tasks || !options.queue) return 'no queue configured (DSMIGRATE_TASKS_QUEUE): Cloud Tasks will retry it until its attempts run out';
    const { project, location } = options.queue;
    const name = taskPath({ name: `projects/${project}/locations/${location}/queues/${queueId}`, project, location, queue: queueId }, taskId);
    try {
      await options.tasks.deleteTask({ name });
      return `deleted task ${name} so that it is not retried`;
    } catch (error) {
      return `could not delete task ${name} (${errorMessage(error)}): Cloud Tasks will retry it until its attempts run out`;
    }
  }
}
