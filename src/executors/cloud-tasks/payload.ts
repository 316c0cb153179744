import { Key } from '../../datastore';
import { DsMigrateError } from '../../errors';

/**
 * What a task carries: ids only, so a body stays a few hundred bytes (Cloud Tasks allows 1 MB; the
 * issue asks for well under 100 KB). Everything else, the operation included, the worker rebuilds
 * from Datastore and from its own copy of the migration files.
 */
interface PayloadBase {
  /** Format version: a worker rejects bodies it does not understand. */
  v: 2;
  /** Namespace of the control kinds (run, records, lock, shard state). */
  ns: string;
  /** The run (src/migrations/run-state.ts). */
  run: string;
  /** The migration's id, `app:name`. */
  migration: string;
  /** The step's position among the migration's steps in the run (src/migrations/run-state.ts), not the operation's index in the file. */
  step: number;
}

/** Start a step: lay out its job's shards (cutting pages of a key stream, one page a task) and dispatch their first slices. */
export interface StartPayload extends PayloadBase {
  type: 'start';
  /** 0 first; where shards are cut from a key stream, each continuation cuts further. */
  page: number;
}

/** Run one time-budgeted slice of one shard. */
export interface SlicePayload extends PayloadBase {
  type: 'slice';
  /** The shard's index in the job's layout. */
  shard: number;
  /** 0 for a shard's first slice; each continuation adds one. */
  slice: number;
}

export type TaskPayload = StartPayload | SlicePayload;

/** 2 since the step's position is named `step` (it was `op`, which read as the operation's index). */
export const PAYLOAD_VERSION = 2;
/** Far above any real payload, far below the 100 KB the issue allows: a larger body is not ours. */
export const MAX_PAYLOAD_BYTES = 8 * 1024;
const MAX_ID_LENGTH = 500;

export function encodePayload(payload: TaskPayload): Buffer {
  return Buffer.from(JSON.stringify(payload));
}

/** A body that is not a task of ours: it can never succeed, so it must not be retried. */
export class MalformedPayloadError extends DsMigrateError {
  constructor(reason: string) {
    super('BAD_INPUT', `Malformed task payload: ${reason}`);
    this.name = 'MalformedPayloadError';
  }
}

export function decodePayload(body: Buffer): TaskPayload {
  if (body.length === 0) throw new MalformedPayloadError('the body is empty');
  if (body.length > MAX_PAYLOAD_BYTES) throw new MalformedPayloadError(`the body has ${body.length} bytes, more than ${MAX_PAYLOAD_BYTES}`);
  let raw: unknown;
  try {
    raw = JSON.parse(body.toString('utf8'));
  } catch {
    throw new MalformedPayloadError('the body is not JSON');
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new MalformedPayloadError('the body is not a JSON object');
  const p = raw as Record<string, unknown>;
  const version = own(p, 'v');
  if (version !== PAYLOAD_VERSION) throw new MalformedPayloadError(`unknown version ${JSON.stringify(version)} (this worker reads ${PAYLOAD_VERSION})`);
  const base: PayloadBase = {
    v: PAYLOAD_VERSION,
    ns: namespace(p),
    run: runId(p),
    migration: text(p, 'migration'),
    step: count(p, 'step'),
  };
  const type = own(p, 'type');
  if (type === 'start') return exact(p, { ...base, type: 'start', page: count(p, 'page') });
  if (type === 'slice') return exact(p, { ...base, type: 'slice', shard: count(p, 'shard'), slice: count(p, 'slice') });
  throw new MalformedPayloadError(`unknown type ${JSON.stringify(type)}`);
}

/** Only the body's own fields: `constructor`, say, is every object's through its prototype. */
function own(p: Record<string, unknown>, field: string): unknown {
  return Object.hasOwn(p, field) ? p[field] : undefined;
}

// Control characters have no place in an id, and would garble the log lines that name it.
const CONTROL_CHARACTER = /\p{Cc}/u;

function text(p: Record<string, unknown>, field: string): string {
  const value = own(p, field);
  if (typeof value !== 'string' || value === '' || value.length > MAX_ID_LENGTH || CONTROL_CHARACTER.test(value)) {
    throw new MalformedPayloadError(`"${field}" must be a non-empty string of at most ${MAX_ID_LENGTH} characters, without control characters`);
  }
  return value;
}

/**
 * Checked here rather than left to Datastore: a name it refuses would fail every attempt of the task with
 * an RPC error, retried as if transient, where it can never succeed.
 */
function namespace(p: Record<string, unknown>): string {
  const value = own(p, 'ns');
  const problem = Key.namespaceProblem(value);
  if (problem !== undefined) throw new MalformedPayloadError(`"ns" is not a namespace: ${problem}`);
  return value as string;
}

/** What newRunId makes (`run-<time>-<random>`) is within this; Datastore reserves names like `__x__`. */
const RUN_ID = /^[A-Za-z0-9._-]{1,100}$/;

function runId(p: Record<string, unknown>): string {
  const value = own(p, 'run');
  if (typeof value !== 'string' || !RUN_ID.test(value) || /^__.*__$/.test(value)) {
    throw new MalformedPayloadError("\"run\" must be a run id: 1 to 100 letters, digits, '.', '-' or '_'");
  }
  return value;
}

function count(p: Record<string, unknown>, field: string): number {
  const value = own(p, field);
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new MalformedPayloadError(`"${field}" must be a whole number >= 0`);
  return value;
}

/** Unknown fields mean a sender we do not know: refuse rather than guess. */
function exact<T extends TaskPayload>(raw: Record<string, unknown>, payload: T): T {
  const extra = Object.keys(raw).filter((k) => !Object.hasOwn(payload, k));
  if (extra.length > 0) throw new MalformedPayloadError(`unexpected field(s) ${extra.map((k) => JSON.stringify(k)).join(', ')}`);
  return payload;
}
