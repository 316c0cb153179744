import type { IncomingMessage, ServerResponse } from 'node:http';
import { decodePayload, MalformedPayloadError, MAX_PAYLOAD_BYTES, type Pipeline, type TaskPayload } from '../executors/cloud-tasks';
import { errorMessage } from '../errors';
import type { Authenticator } from './auth';
import { BodyReadError, DEFAULT_READ_DEADLINE_MS, headerValue, readBody, sendJson } from './http';

export type Severity = 'INFO' | 'WARNING' | 'ERROR';

/** The whole body of an answer to a request not (yet) authenticated. */
const REFUSALS = { 401: 'unauthenticated', 403: 'forbidden', 408: 'request timeout', 413: 'payload too large' } as const;

/**
 * What a log entry keeps of a header, or of a reason made from one. Before authentication they are
 * anyone's, and node admits 16 KB of headers: whole, they would let any caller fill the logs.
 */
const LOGGED_HEADER_CHARS = 200;

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
 * - 2xx: the step was taken, was already taken, or failed for good (the failure is recorded); or the
 *   request is authenticated but not a task of ours, so it can never succeed (`dropped`, logged as an
 *   error). Cloud Tasks then deletes the task: the worker itself never deletes one, since the headers
 *   that would name it are covered by no signature or token.
 * - 408/413: the body did not arrive in time or is too large; nothing else was looked at.
 * - 401/403: not from our Cloud Tasks queue; nothing was read or changed. The body names the status
 *   only: why a credential failed would help whoever forges one, so the reason goes to the log.
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
    const taskName = headerValue(req, 'x-cloudtasks-taskname');
    const task = taskName === undefined ? undefined : clip(taskName);
    const answer = (status: number, severity: Severity, message: string, payload?: TaskPayload, body: Record<string, unknown> = {}): void => {
      log({ severity, message, status, task, payload });
      sendJson(res, status, { ...body, message });
    };
    // Acknowledged so that Cloud Tasks stops retrying what can never succeed; the log says what was dropped.
    const drop = (error: MalformedPayloadError, payload?: TaskPayload): void => answer(200, 'ERROR', `dropped: ${error.message}`, payload, { result: 'dropped' });

    // Before authentication (the signature covers the body) the client learns the status and nothing
    // else. After a 408 the client may still be sending: the connection closes.
    const refuse = (status: keyof typeof REFUSALS, reason: string): void => {
      log({ severity: 'WARNING', message: clip(reason), status, task });
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
      return drop(error);
    }

    try {
      const outcome = await options.pipeline.run(payload);
      answer(200, outcome.result === 'failed' ? 'ERROR' : 'INFO', `${payload.type} ${payload.migration}#${payload.step}: ${outcome.result}: ${outcome.detail}`, payload, { result: outcome.result });
    } catch (error) {
      if (error instanceof MalformedPayloadError) return drop(error, payload);
      answer(500, 'ERROR', `${payload.type} ${payload.migration}#${payload.step} will be retried: ${errorMessage(error)}`, payload);
    }
  }
}

function clip(text: string): string {
  return text.length <= LOGGED_HEADER_CHARS ? text : `${text.slice(0, LOGGED_HEADER_CHARS)}… (${text.length} characters)`;
}
