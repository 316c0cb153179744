import type { IncomingMessage, ServerResponse } from 'node:http';
import { decodePayload, MalformedPayloadError, MAX_PAYLOAD_BYTES, taskPath, type Pipeline, type QueuePath, type TaskPayload, type TasksApi } from '../executors/cloud-tasks';
import { errorMessage } from '../errors';
import type { Authenticator } from './auth';
import { BodyReadError, DEFAULT_READ_DEADLINE_MS, headerValue, readBody, sendJson } from './http';

export type Severity = 'INFO' | 'WARNING' | 'ERROR';

// Cloud Tasks' task id alphabet and length.
const TASK_ID = /^[A-Za-z0-9_-]{1,500}$/;

/** The whole body of an answer to a request not (yet) authenticated. */
const REFUSALS = { 401: 'unauthenticated', 403: 'forbidden', 408: 'request timeout', 413: 'payload too large' } as const;

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
  /** The queue tasks come from: the only one the worker deletes tasks in. */
  queue?: QueuePath;
  log?: (entry: WorkerLogEntry) => void;
  /** Time to send the body, from when the headers are in; default DEFAULT_READ_DEADLINE_MS. */
  readDeadlineMs?: number;
}

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

export function jsonLog(entry: WorkerLogEntry): void {
  process.stdout.write(`${JSON.stringify({ ...entry, component: 'dsmigrate-worker' })}\n`);
}

/**
 * The worker endpoint, as a plain node:http handler (express and fastify accept it too). The body
 * is read within a size limit and a deadline, then the request is authenticated before anything
 * else is looked at. Answers:
 * - 2xx: the step was taken, was already taken, or failed for good (the failure is recorded). Cloud
 *   Tasks then deletes the task.
 * - 408/413: the body did not arrive in time or is too large; nothing else was looked at.
 * - 401/403: not from our Cloud Tasks queue; nothing was read or changed. The body names the status
 *   only: why a credential failed would help whoever forges one, so the reason goes to the log.
 * - 400: an authenticated request whose body is not a task of ours. It can never succeed, and Cloud
 *   Tasks retries every non-2xx answer, so the worker first deletes the task through the API
 *   (allowed while it is being dispatched), if the X-CloudTasks-QueueName header names the
 *   configured queue (see deleteBadTask).
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

    // Before authentication (the signature covers the body) the client learns the status and nothing
    // else, and nothing is deleted. After a 408 the client may still be sending: the connection closes.
    const refuse = (status: keyof typeof REFUSALS, reason: string): void => {
      log({ severity: 'WARNING', message: reason, status, task });
      sendJson(res, status, { error: REFUSALS[status] }, { close: status === 408 });
    };

    let body: Buffer;
    try {
      body = await readBody(req, { maxBytes: MAX_PAYLOAD_BYTES, deadlineMs: options.readDeadlineMs ?? DEFAULT_READ_DEADLINE_MS });
    } catch (error) {
      if (!(error instanceof BodyReadError)) throw error;
      return refuse(error.status, `rejected: ${error.message}`);
    }
    const auth = await options.authenticator.authenticate({ headers: req.headers, body });
    if (!auth.ok) return refuse(auth.status, `unauthenticated request rejected (${auth.status}): ${auth.reason}`);
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
      // Cloud Tasks counts the task's earlier attempts; the pipeline fails a step that keeps failing.
      const attempt = Number(headerValue(req, 'x-cloudtasks-taskretrycount') ?? 0) || 0;
      const outcome = await options.pipeline.run(payload, attempt);
      answer(200, outcome.result === 'failed' ? 'ERROR' : 'INFO', `${payload.type} ${payload.migration}#${payload.step}: ${outcome.result}: ${outcome.detail}`, payload, { result: outcome.result });
    } catch (error) {
      if (error instanceof MalformedPayloadError) {
        const removal = await deleteBadTask(req);
        return answer(400, 'ERROR', `${error.message}; ${removal}`, payload);
      }
      answer(500, 'ERROR', `${payload.type} ${payload.migration}#${payload.step} will be retried: ${errorMessage(error)}`, payload);
    }
  }

  /**
   * Deletes the task being answered, so that a permanently bad one is not retried; says what happened.
   * Only in the configured queue: the headers are the sender's word, and a worker that deleted
   * wherever they pointed could be made to empty another queue of the project (its tasks are
   * authenticated with the same account or secret). Cloud Tasks sends the queue's id only, so the
   * task's full name is built from the configured project and location, and the task id must be one
   * (Cloud Tasks' alphabet: letters, digits, hyphens, underscores), not a path into another queue.
   */
  async function deleteBadTask(req: IncomingMessage): Promise<string> {
    const queueId = headerValue(req, 'x-cloudtasks-queuename');
    const taskId = headerValue(req, 'x-cloudtasks-taskname');
    if (!queueId || !taskId) return 'not a Cloud Tasks dispatch, nothing to delete';
    const retried = 'Cloud Tasks will retry it until its attempts run out';
    if (!options.tasks || !options.queue) return `no queue configured (DSMIGRATE_TASKS_QUEUE): ${retried}`;
    if (queueId !== options.queue.queue) return `refused to delete task ${JSON.stringify(taskId)}: its queue ${JSON.stringify(queueId)} is not the configured ${options.queue.name}; ${retried}`;
    if (!TASK_ID.test(taskId)) return `refused to delete task ${JSON.stringify(taskId)}: not a task id; ${retried}`;
    const name = taskPath(options.queue, taskId);
    try {
      await options.tasks.deleteTask({ name });
      return `deleted task ${name} so that it is not retried`;
    } catch (error) {
      return `could not delete task ${name} (${errorMessage(error)}): ${retried}`;
    }
  }
}
