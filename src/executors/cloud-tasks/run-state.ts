import { randomBytes } from 'node:crypto';
import { CONTROL_KINDS, corrupt, decodeJson, decodeStored, runKey } from '../../control';
import { Entity, type Datastore, type Transaction } from '../../datastore';
import type { Direction } from '../../migrations';
import { rateProblem } from '../../sharding';

/**
 * A Cloud Tasks run: the migrations one `migrate --executor cloud-tasks` set out to apply (or unapply),
 * and where the run stands. One entity (kind `_dsmigrate_run`, in the control namespace), changed
 * only in transactions, so that each transition of the run (starting a migration, finishing a step,
 * moving on) is taken exactly once however often its tasks are delivered.
 */
export type RunStatus = 'running' | 'done' | 'failed' | 'abandoned';
const STATUSES: readonly RunStatus[] = ['running', 'done', 'failed', 'abandoned'];

export interface RunMigration {
  id: string;
  /** The file's checksum when the run was planned: a worker with another version refuses to run it. */
  checksum: string;
  /** The operations to run, by their index in the file, in the run's order (see src/migrations/lifecycle.ts). */
  steps: number[];
}

export type DispatchAuthSpec = { kind: 'hmac' } | { kind: 'oidc'; serviceAccountEmail: string; audience: string };

/** Where the run's tasks go. Kept with the run so that every worker continues it the same way; never a secret. */
export interface DispatchSpec {
  queue: string;
  url: string;
  auth: DispatchAuthSpec;
  dispatchDeadlineMs: number;
  sliceBudgetMs: number;
  /** A step failing this many times fails its migration (cloudTasks.maxStepAttempts). */
  maxStepAttempts: number;
  /** `migrate --max-rate`: entities per second over all the slices of a step whose operation sets no rate. */
  maxEntitiesPerSecond?: number;
}

export interface RunState {
  id: string;
  /** The control namespace the run, its records and its lease live in. */
  namespace: string;
  status: RunStatus;
  direction: Direction;
  migrations: RunMigration[];
  /** Index in `migrations` of the migration under way; `migrations.length` once all are done. */
  current: number;
  /** The step under way in it (an index into its `steps`). */
  op: number;
  /** The last migration whose record this run has begun (-1: none yet). */
  started: number;
  /** The job of the step under way, once its plan task has readied it. */
  job: string | null;
  /**
   * Shards of the step under way dispatched so far; null until its planning started. Which have
   * finished, and whether all are known, the shards' own checkpoints and plan say.
   */
  shards: number | null;
  dispatch: DispatchSpec;
  leaseTtlMs: number;
  command: string;
  error?: string;
  createdAt: Date;
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
      status: run.status,
      direction: run.direction,
      migrations: JSON.stringify(run.migrations),
      current: run.current,
      op: run.op,
      started: run.started,
      job: run.job,
      shards: run.shards,
      dispatch: JSON.stringify(run.dispatch),
      leaseTtlMs: run.leaseTtlMs,
      command: run.command,
      error: run.error ?? null,
      createdAt: run.createdAt,
      updatedAt: new Date(),
      finishedAt: run.finishedAt ?? null,
    },
    { excludeFromIndexes: ['migrations', 'dispatch', 'error'] },
  );
}

const isIndexList = (x: unknown): boolean => Array.isArray(x) && x.every((i) => Number.isInteger(i) && i >= 0);

export function decodeRunState(entity: Entity): RunState {
  const v = decodeStored(entity, {
    status: 'string',
    direction: 'string',
    migrations: 'string',
    current: 'number',
    op: 'number',
    started: 'number',
    job: 'string?',
    shards: 'number?',
    dispatch: 'string',
    leaseTtlMs: 'number',
    command: 'string',
    error: 'string?',
    createdAt: 'date',
    finishedAt: 'date?',
  });
  if (!STATUSES.includes(v.status as RunStatus)) throw corrupt(entity, `its status "${v.status}" is unknown`);
  if (v.direction !== 'forward' && v.direction !== 'reverse') throw corrupt(entity, `its direction "${v.direction}" is unknown`);
  const { list } = decodeJson<{ list: RunMigration[] }>(
    entity,
    'migrations',
    `{"list":${v.migrations}}`,
    (x) => Array.isArray(x.list) && x.list.every((m: Record<string, unknown>) => typeof m.id === 'string' && typeof m.checksum === 'string' && isIndexList(m.steps)),
  );
  const dispatch = decodeJson<DispatchSpec>(
    entity,
    'dispatch',
    v.dispatch,
    (d) =>
      typeof d.queue === 'string' &&
      typeof d.url === 'string' &&
      typeof d.auth === 'object' &&
      [d.dispatchDeadlineMs, d.sliceBudgetMs, d.maxStepAttempts].every((n) => typeof n === 'number') &&
      (d.maxEntitiesPerSecond === undefined || rateProblem(d.maxEntitiesPerSecond, 'maxEntitiesPerSecond') === undefined),
  );
  return {
    id: entity.key.name!,
    namespace: entity.key.namespace,
    status: v.status as RunStatus,
    direction: v.direction,
    migrations: list,
    current: v.current,
    op: v.op,
    started: v.started,
    job: v.job ?? null,
    shards: v.shards ?? null,
    dispatch,
    leaseTtlMs: v.leaseTtlMs,
    command: v.command,
    error: v.error,
    createdAt: v.createdAt,
    finishedAt: v.finishedAt,
  };
}

export async function loadRun(store: Datastore | Transaction, namespace: string, runId: string): Promise<RunState | undefined> {
  const entity = await store.get(runKey(namespace, runId));
  return entity && decodeRunState(entity);
}

/** The newest runs of a control namespace, newest first (for `status`). */
export async function recentRuns(store: Datastore, namespace: string, limit: number): Promise<RunState[]> {
  const runs: RunState[] = [];
  for await (const entity of store.query({ kind: CONTROL_KINDS.run, namespace })) runs.push(decodeRunState(entity));
  return runs.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime()).slice(0, limit);
}

/** Finished runs' state is kept for `status` and then dropped: all but the newest `keep` that ended. */
export async function pruneRuns(store: Datastore, namespace: string, keep: number): Promise<void> {
  const ended = (await recentRuns(store, namespace, Number.MAX_SAFE_INTEGER)).filter((r) => r.status !== 'running');
  const old = ended.slice(keep);
  if (old.length > 0) await store.delete(old.map((r) => runKey(namespace, r.id)));
}

/** The migration under way, or undefined once the run is past its last one. */
export function currentMigration(run: RunState): RunMigration | undefined {
  return run.migrations[run.current];
}

/** Whether a task for (migration, step) belongs to the step the run is at now; any other task is stale. */
export function isCurrentStep(run: RunState, migration: string, op: number): boolean {
  return run.status === 'running' && currentMigration(run)?.id === migration && run.op === op;
}
