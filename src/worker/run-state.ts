import { randomBytes } from 'node:crypto';
import { Entity, Key, type Datastore, type Transaction } from '../datastore';
import { DsMigrateError } from '../errors';

/**
 * A pipeline run: the migrations one `migrate --executor cloud-tasks` set out to apply (or unapply),
 * and where the run stands. One entity (kind `_dsmigrate_run`, in the control namespace), changed
 * only in transactions, so that each step of the run (starting a migration, finishing an operation,
 * moving on) is taken exactly once however often its tasks are delivered.
 */
export const RUN_STATE_KIND = '_dsmigrate_run';

export type RunStatus = 'running' | 'done' | 'failed' | 'abandoned';

export interface RunMigration {
  id: string;
  /** The file's checksum when the run was planned: a worker with another version refuses to run it. */
  checksum: string;
  /** Resume the migration's earlier attempt (its record and shard state) rather than start it over. */
  resume: boolean;
}

export type DispatchAuthSpec = { kind: 'hmac' } | { kind: 'oidc'; serviceAccountEmail: string; audience: string };

/** Where the run's tasks go. Kept with the run so that every worker continues it the same way; never a secret. */
export interface DispatchSpec {
  queue: string;
  url: string;
  auth: DispatchAuthSpec;
  dispatchDeadlineMs: number;
  sliceBudgetMs: number;
}

export interface RunState {
  id: string;
  /** The control namespace the run, its records and its lock live in. */
  namespace: string;
  status: RunStatus;
  direction: 'forward' | 'reverse';
  migrations: RunMigration[];
  /** Index in `migrations` of the migration under way; `migrations.length` once all are done. */
  current: number;
  /** The operation under way in it. */
  op: number;
  /** The last migration whose record this run has started (-1: none yet). */
  started: number;
  /**
   * Shards of the operation under way dispatched so far; null until its planning started. Which have
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

export function runStateKey(namespace: string, runId: string): Key {
  return Key.of(RUN_STATE_KIND, runId, { namespace });
}

export function encodeRunState(run: RunState): Entity {
  return Entity.from(
    runStateKey(run.namespace, run.id),
    {
      status: run.status,
      direction: run.direction,
      migrations: JSON.stringify(run.migrations),
      current: run.current,
      op: run.op,
      started: run.started,
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

export function decodeRunState(entity: Entity): RunState {
  const v = entity.toObject();
  const json = <T>(name: string): T => {
    if (typeof v[name] !== 'string') throw new DsMigrateError('DATASTORE', `Run ${entity.key} has no ${name}.`, { key: entity.key.toString() });
    return JSON.parse(v[name] as string) as T;
  };
  return {
    id: entity.key.name!,
    namespace: entity.key.namespace,
    status: v.status as RunStatus,
    direction: v.direction === 'reverse' ? 'reverse' : 'forward',
    migrations: json<RunMigration[]>('migrations'),
    current: Number(v.current),
    op: Number(v.op),
    started: Number(v.started),
    shards: v.shards === null || v.shards === undefined ? null : Number(v.shards),
    dispatch: json<DispatchSpec>('dispatch'),
    leaseTtlMs: Number(v.leaseTtlMs),
    command: String(v.command ?? ''),
    error: typeof v.error === 'string' ? v.error : undefined,
    createdAt: v.createdAt as Date,
    finishedAt: v.finishedAt instanceof Date ? v.finishedAt : undefined,
  };
}

export async function loadRun(store: Datastore | Transaction, namespace: string, runId: string): Promise<RunState | undefined> {
  const entity = await store.get(runStateKey(namespace, runId));
  return entity && decodeRunState(entity);
}

/** The migration under way, or undefined once the run is past its last one. */
export function currentMigration(run: RunState): RunMigration | undefined {
  return run.migrations[run.current];
}

/** Whether a task for (migration, op) belongs to the step the run is at now; any other task is stale. */
export function isCurrentStep(run: RunState, migration: string, op: number): boolean {
  return run.status === 'running' && currentMigration(run)?.id === migration && run.op === op;
}
