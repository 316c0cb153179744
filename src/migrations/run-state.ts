import { randomBytes } from 'node:crypto';
import { CONTROL_KINDS, corrupt, decodeJson, decodeStored, runKey } from '../control';
import { Entity, type Datastore, type Transaction } from '../datastore';
import { UNDO_CONFLICTS, type UndoConflicts } from '../operations';
import type { Direction, JobCounts } from './recorder';

/**
 * A run, as stored: the migrations one `migrate` set out to apply (or unapply), where it stands, what
 * each finished step counted and what it waits on. One `_dsmigrate_run` entity in the control
 * namespace, for either driver, changed only by the run's own transitions (src/migrations/run.ts),
 * so that `dsmigrate status` on any machine reads the same thing whichever process carries it on.
 */
export type RunStatus = 'running' | 'done' | 'failed' | 'abandoned';
const STATUSES: readonly RunStatus[] = ['running', 'done', 'failed', 'abandoned'];

/** Where a run's steps run: in the process that holds the lease, or as Cloud Tasks on the worker. */
export type RunDriver = 'local' | 'cloud-tasks';
const DRIVERS: readonly RunDriver[] = ['local', 'cloud-tasks'];

export interface RunMigration {
  id: string;
  /** The file's checksum when the run was planned: a process with another version refuses to run it. */
  checksum: string;
  /** The operations to run, by their index in the file, in the run's order (src/migrations/planning.ts). */
  steps: number[];
  /** Each step's description, so that a watcher without the files can still say what runs. */
  descriptions: string[];
  /** What each finished step counted, by position; null until it finished. */
  counts: (JobCounts | null)[];
}

/** What a run cannot get past by itself, as the process that last tried said (`dsmigrate status`). */
export interface RunWait {
  reason: string;
  /** Attempts of the step so far. */
  attempts: number;
  since: Date;
}

export interface RunState {
  id: string;
  /** The control namespace the run, its records and its lease live in. */
  namespace: string;
  driver: RunDriver;
  /** The lease owner of the run: a process (local) or the run itself (Cloud Tasks). */
  owner: string;
  status: RunStatus;
  direction: Direction;
  /** The run's target (`app:name` or `app:zero`), recorded on each migration it begins: a failed migration's advice names it. */
  target?: string;
  migrations: RunMigration[];
  /** Index in `migrations` of the migration under way; `migrations.length` once all are done. */
  current: number;
  /** The position of the step under way among the current migration's steps. */
  step: number;
  /** The last migration whose record this run has begun (-1: none yet). */
  started: number;
  /** The job of the step under way, once the step has started. */
  job: string | null;
  /** When the step under way started its job (for the rate and the time left). */
  stepStartedAt: Date | null;
  /** Shards of the step under way handed out so far (Cloud Tasks dispatches them page by page); null before. */
  shards: number | null;
  /** The next page of the step under way to lay out (Cloud Tasks start tasks): a start task of any other page is stale. */
  page: number;
  waiting?: RunWait;
  /** The driver's own settings, as JSON (Cloud Tasks: where its tasks go); never a secret. */
  settings: string | null;
  /** `--undo-conflicts`, for every process that makes the run's back-out steps (a Cloud Tasks worker too). */
  undoConflicts: UndoConflicts;
  leaseTtlMs: number;
  command: string;
  error?: string;
  /** The error's code (src/errors.ts), so that a watcher exits as the run's own process would. */
  errorCode?: string;
  /**
   * The id of the transition (src/migrations/run.ts) that wrote this state: a transition retried after its
   * commit answered an error finds its own id here and knows that the commit landed and it moved the run.
   */
  lastTransition?: string;
  createdAt: Date;
  updatedAt?: Date;
  finishedAt?: Date;
}

export function newRunId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `run-${stamp}-${randomBytes(4).toString('hex')}`;
}

export function encodeRunState(run: RunState): Entity {
  return Entity.from(
    runKey(run.namespace, run.id),
    {
      driver: run.driver,
      owner: run.owner,
      status: run.status,
      direction: run.direction,
      target: run.target ?? null,
      migrations: JSON.stringify(run.migrations),
      current: run.current,
      step: run.step,
      started: run.started,
      job: run.job,
      stepStartedAt: run.stepStartedAt,
      shards: run.shards,
      page: run.page,
      waiting: run.waiting ? JSON.stringify({ ...run.waiting, since: run.waiting.since.toISOString() }) : null,
      settings: run.settings,
      undoConflicts: run.undoConflicts,
      leaseTtlMs: run.leaseTtlMs,
      command: run.command,
      error: run.error ?? null,
      errorCode: run.errorCode ?? null,
      lastTransition: run.lastTransition ?? null,
      createdAt: run.createdAt,
      updatedAt: new Date(),
      finishedAt: run.finishedAt ?? null,
    },
    { excludeFromIndexes: ['migrations', 'waiting', 'settings', 'error', 'lastTransition'] },
  );
}

const isIndexList = (x: unknown): boolean => Array.isArray(x) && x.every((i) => Number.isInteger(i) && i >= 0);
const COUNT_FIELDS = ['scanned', 'changed', 'deleted', 'skipped', 'failed', 'shardsDone', 'shardsTotal'] as const;
const isCounts = (x: unknown): boolean => x === null || (typeof x === 'object' && COUNT_FIELDS.every((f) => Number.isInteger((x as Record<string, unknown>)[f])));

function isRunMigration(m: Record<string, unknown>): boolean {
  const steps = m.steps as unknown[];
  return (
    typeof m.id === 'string' &&
    typeof m.checksum === 'string' &&
    isIndexList(steps) &&
    Array.isArray(m.descriptions) &&
    m.descriptions.length === steps.length &&
    m.descriptions.every((d) => typeof d === 'string') &&
    Array.isArray(m.counts) &&
    m.counts.length === steps.length &&
    m.counts.every(isCounts)
  );
}

export function decodeRunState(entity: Entity): RunState {
  const v = decodeStored(entity, {
    driver: 'string',
    owner: 'string',
    status: 'string',
    direction: 'string',
    target: 'string?',
    migrations: 'string',
    current: 'number',
    step: 'number',
    started: 'number',
    job: 'string?',
    stepStartedAt: 'date?',
    shards: 'number?',
    page: 'number?',
    waiting: 'string?',
    settings: 'string?',
    undoConflicts: 'string?',
    leaseTtlMs: 'number',
    command: 'string',
    error: 'string?',
    errorCode: 'string?',
    lastTransition: 'string?',
    createdAt: 'date',
    updatedAt: 'date?',
    finishedAt: 'date?',
  });
  if (!STATUSES.includes(v.status as RunStatus)) throw corrupt(entity, `its status "${v.status}" is unknown`);
  if (!DRIVERS.includes(v.driver as RunDriver)) throw corrupt(entity, `its driver "${v.driver}" is unknown`);
  if (v.direction !== 'forward' && v.direction !== 'reverse') throw corrupt(entity, `its direction "${v.direction}" is unknown`);
  // Runs stored before the policy was carried have none: they refused conflicts.
  const undoConflicts = (v.undoConflicts ?? 'refuse') as UndoConflicts;
  if (!UNDO_CONFLICTS.includes(undoConflicts)) throw corrupt(entity, `its undoConflicts "${v.undoConflicts}" is unknown`);
  const { list } = decodeJson<{ list: RunMigration[] }>(entity, 'migrations', `{"list":${v.migrations}}`, (x) => Array.isArray(x.list) && x.list.every(isRunMigration));
  if (!(v.current >= 0 && v.current <= list.length && v.step >= 0 && v.started >= -1)) throw corrupt(entity, `its position (migration ${v.current}, step ${v.step}) is out of range`);
  let waiting: RunWait | undefined;
  if (v.waiting !== undefined) {
    const w = decodeJson<{ reason: string; attempts: number; since: string }>(
      entity,
      'waiting',
      v.waiting,
      (x) => typeof x.reason === 'string' && Number.isInteger(x.attempts) && typeof x.since === 'string' && !Number.isNaN(Date.parse(x.since)),
    );
    waiting = { reason: w.reason, attempts: w.attempts, since: new Date(w.since) };
  }
  return {
    id: entity.key.name!,
    namespace: entity.key.namespace,
    driver: v.driver as RunDriver,
    owner: v.owner,
    status: v.status as RunStatus,
    direction: v.direction,
    target: v.target,
    migrations: list,
    current: v.current,
    step: v.step,
    started: v.started,
    job: v.job ?? null,
    stepStartedAt: v.stepStartedAt ?? null,
    shards: v.shards ?? null,
    page: v.page ?? 0,
    waiting,
    settings: v.settings ?? null,
    undoConflicts,
    leaseTtlMs: v.leaseTtlMs,
    command: v.command,
    error: v.error,
    errorCode: v.errorCode,
    lastTransition: v.lastTransition,
    createdAt: v.createdAt,
    updatedAt: v.updatedAt,
    finishedAt: v.finishedAt,
  };
}

export async function loadRun(store: Datastore | Transaction, namespace: string, runId: string): Promise<RunState | undefined> {
  const entity = await store.get(runKey(namespace, runId));
  return entity && decodeRunState(entity);
}

/** The newest runs of a control namespace, newest first (for `status`). The kind stays small: ended runs are pruned. */
export async function recentRuns(store: Datastore, namespace: string, limit = Number.MAX_SAFE_INTEGER): Promise<RunState[]> {
  const runs: RunState[] = [];
  for await (const entity of store.query({ kind: CONTROL_KINDS.run, namespace })) runs.push(decodeRunState(entity));
  return runs.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime()).slice(0, limit);
}

/** The migration under way, or undefined once the run is past its last one. */
export function currentMigration(run: RunState): RunMigration | undefined {
  return run.migrations[run.current];
}

/** Whether (migration, step) is the step the run is at now; a task for any other step is stale. */
export function isCurrentStep(run: RunState, migration: string, step: number): boolean {
  return run.status === 'running' && currentMigration(run)?.id === migration && run.step === step;
}
