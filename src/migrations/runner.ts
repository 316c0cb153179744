import type { Datastore } from '../datastore';
import { DsMigrateError, errorMessage } from '../errors';
import type { MigrationGraph } from './graph';
import type { LoadedMigration } from './loader';
import { MigrationLock } from './lock';
import { Recorder, type MigrationRecord, type OperationRecord } from './recorder';
import type { Executor, OperationProgress, OperationResult } from '../executors';
import type { Operation } from '../operations';

export type RunEvent =
  | { type: 'plan'; direction: 'forward' | 'reverse'; migrations: string[] }
  | { type: 'migration-start'; migration: string; index: number; total: number; resumed: boolean }
  | { type: 'operation-start'; migration: string; operation: number; operations: number; description: string }
  | { type: 'progress'; migration: string; operation: number; progress: OperationProgress }
  | { type: 'operation-done'; migration: string; operation: number; result: OperationResult }
  | { type: 'migration-done'; migration: string; state: MigrationRecord['state'] | 'unapplied' }
  | { type: 'migration-failed'; migration: string; error: string }
  | { type: 'dry-run'; migration: string; operation: number; description: string; result: OperationResult };

export interface MigrateOptions {
  /** Stop at this migration (`name`, its number, or `app:name`); an applied target unapplies what came after it; `zero` unapplies all. */
  target?: string;
  fake?: boolean;
  dryRun?: boolean;
  allowChanged?: boolean;
  lockWaitMs?: number;
  lockTtlMs?: number;
  onEvent?: (event: RunEvent) => void;
}

export interface MigrateSummary {
  applied: string[];
  unapplied: string[];
  faked: string[];
  dryRun: { migration: string; operation: number; description: string; result: OperationResult }[];
}

export interface RunnerContext {
  store: Datastore;
  graph: MigrationGraph;
  executor: Executor;
  /** The namespace of the control kinds (records, lock, shard state). */
  controlNamespace?: string;
}

const APPLIED = new Set(['applied', 'faked']);

export function isApplied(record: MigrationRecord | undefined): boolean {
  return record !== undefined && APPLIED.has(record.state);
}

export function operationRunId(migrationId: string, index: number, direction: 'forward' | 'reverse' = 'forward'): string {
  return direction === 'forward' ? `${migrationId}#${index}` : `${migrationId}#${index}~reverse`;
}

/** Finds a migration by `app:name`, by name alone when only one app has it, or by its number prefix. */
export function resolveTarget(graph: MigrationGraph, target: string): LoadedMigration {
  if (graph.byId.has(target)) return graph.byId.get(target)!;
  const matches = graph.ordered.filter((m) => m.name === target || m.name.startsWith(`${target}_`) || `${m.app}:${m.name}`.startsWith(`${target}_`));
  if (matches.length === 1) return matches[0];
  const why = matches.length === 0 ? 'no migration matches it' : `it matches ${matches.map((m) => m.id).join(', ')}; use app:name`;
  throw new DsMigrateError('BAD_INPUT', `Unknown target "${target}": ${why}.`, { migration: target });
}

/** Files edited after they were applied would make history lie; refuse unless told otherwise. */
export function checkChecksums(graph: MigrationGraph, records: Map<string, MigrationRecord>, allowChanged = false): void {
  if (allowChanged) return;
  for (const m of graph.ordered) {
    const record = records.get(m.id);
    if (record && record.state !== 'pending' && record.checksum !== m.checksum) {
      throw new DsMigrateError(
        'MIGRATION_LOAD',
        `${m.file} was changed after it was ${record.state} (checksum ${record.checksum}, now ${m.checksum}). Revert the edit and add a new migration, or pass --allow-changed.`,
        { file: m.file, migration: m.id },
      );
    }
  }
}

/** The migrations to apply (forward) or unapply (reverse, newest first) to reach the target. */
export function planRun(graph: MigrationGraph, records: Map<string, MigrationRecord>, target?: string): { direction: 'forward' | 'reverse'; migrations: LoadedMigration[] } {
  if (!target) return { direction: 'forward', migrations: graph.ordered.filter((m) => !isApplied(records.get(m.id))) };
  const zero = /^(?:(.+):)?zero$/.exec(target);
  if (zero) {
    // `zero` (one app) or `app:zero`: unapply the app's every migration, and whatever depends on them.
    const apps = new Set(graph.ordered.map((m) => m.app));
    const app = zero[1] ?? (apps.size === 1 ? [...apps][0] : undefined);
    if (!app || !apps.has(app)) throw new DsMigrateError('BAD_INPUT', `Unknown target "${target}": say app:zero with one of ${[...apps].join(', ')}.`);
    const roots = graph.ordered.filter((m) => m.app === app);
    const doomed = new Set(roots.flatMap((m) => [m.id, ...descendants(graph, m.id)]));
    return { direction: 'reverse', migrations: graph.ordered.filter((m) => doomed.has(m.id) && records.get(m.id) !== undefined).reverse() };
  }
  const goal = resolveTarget(graph, target);
  if (!isApplied(records.get(goal.id))) {
    const needed = ancestors(graph, goal.id);
    return { direction: 'forward', migrations: graph.ordered.filter((m) => needed.has(m.id) && !isApplied(records.get(m.id))) };
  }
  // Going back: unapply everything applied that depends on the target, newest first.
  const later = descendants(graph, goal.id);
  return { direction: 'reverse', migrations: graph.ordered.filter((m) => later.has(m.id) && records.get(m.id) !== undefined).reverse() };
}

function ancestors(graph: MigrationGraph, id: string): Set<string> {
  const out = new Set<string>();
  const visit = (x: string) => {
    if (out.has(x)) return;
    out.add(x);
    graph.byId.get(x)!.dependencies.forEach(visit);
  };
  visit(id);
  return out;
}

function descendants(graph: MigrationGraph, id: string): Set<string> {
  const out = new Set<string>();
  const visit = (x: string) => graph.dependents.get(x)!.forEach((d) => (out.has(d) ? undefined : (out.add(d), visit(d))));
  visit(id);
  return out;
}

/** A migration's operations in a direction: in reverse order and each reversed when unapplying. */
export function directedOperations(m: LoadedMigration, direction: 'forward' | 'reverse'): Operation[] {
  if (direction === 'forward') return m.definition.operations;
  const irreversible = m.definition.operations.filter((op) => !op.reversible);
  if (irreversible.length > 0) {
    throw new DsMigrateError(
      'BAD_INPUT',
      `Cannot unapply ${m.id} (${m.file}): ${irreversible.map((op) => op.describe()).join('; ')} ${irreversible.length === 1 ? 'is' : 'are'} irreversible.`,
      { file: m.file, migration: m.id },
    );
  }
  return m.definition.operations.map((op) => op.reverse()).reverse();
}

/**
 * Applies pending migrations in graph order and their operations in order. A migration is recorded
 * `applied` only once every shard of every operation has finished; until then it stays `running`
 * with progress, and the next run resumes it where it stopped.
 */
export async function migrate(ctx: RunnerContext, options: MigrateOptions = {}): Promise<MigrateSummary> {
  const emit = options.onEvent ?? (() => undefined);
  const recorder = new Recorder(ctx.store, ctx.controlNamespace);
  const records = await recorder.list();
  checkChecksums(ctx.graph, records, options.allowChanged);
  const plan = planRun(ctx.graph, records, options.target);
  const steps = plan.migrations.map((m) => ({ m, operations: directedOperations(m, plan.direction) }));
  for (const { operations } of steps) for (const op of operations) await op.validate(ctx.store);
  emit({ type: 'plan', direction: plan.direction, migrations: plan.migrations.map((m) => m.id) });

  const summary: MigrateSummary = { applied: [], unapplied: [], faked: [], dryRun: [] };
  if (options.dryRun) {
    for (const { m, operations } of steps) {
      for (const [i, op] of operations.entries()) {
        const result = await ctx.executor.runOperation({ store: ctx.store, runId: operationRunId(m.id, i, plan.direction), operation: op, dryRun: true, migration: m.id });
        summary.dryRun.push({ migration: m.id, operation: i, description: op.describe(), result });
        emit({ type: 'dry-run', migration: m.id, operation: i, description: op.describe(), result });
      }
    }
    return summary;
  }

  const lock = new MigrationLock(ctx.store, { namespace: ctx.controlNamespace, waitMs: options.lockWaitMs, ttlMs: options.lockTtlMs, command: `migrate ${options.target ?? ''}`.trim() });
  await lock.acquire();
  try {
    // Re-read after taking the lock: another run may have finished work meanwhile.
    const fresh = await recorder.list();
    for (const [index, { m, operations }] of steps.entries()) {
      lock.check();
      const existing = fresh.get(m.id);
      if (plan.direction === 'forward' && isApplied(existing)) continue;
      if (options.fake) {
        await recorder.save({ ...Recorder.fresh(m.id, m.app, m.name, m.checksum, []), state: plan.direction === 'forward' ? 'faked' : 'pending', finishedAt: new Date() });
        if (plan.direction === 'reverse') await recorder.remove(m.id);
        (plan.direction === 'forward' ? summary.faked : summary.unapplied).push(m.id);
        emit({ type: 'migration-done', migration: m.id, state: plan.direction === 'forward' ? 'faked' : 'unapplied' });
        continue;
      }
      await runMigration(ctx, recorder, lock, m, operations, plan.direction, existing, { index, total: steps.length, emit });
      (plan.direction === 'forward' ? summary.applied : summary.unapplied).push(m.id);
    }
  } finally {
    await lock.release();
  }
  return summary;
}

async function runMigration(
  ctx: RunnerContext,
  recorder: Recorder,
  lock: MigrationLock,
  m: LoadedMigration,
  operations: Operation[],
  direction: 'forward' | 'reverse',
  existing: MigrationRecord | undefined,
  progress: { index: number; total: number; emit: (e: RunEvent) => void },
): Promise<void> {
  const { emit } = progress;
  // Resume only a run in the same direction; anything else starts over with fresh operation state.
  const resumed = existing !== undefined && (existing.state === 'running' || existing.state === 'failed') && existing.direction === direction;
  const record: MigrationRecord = resumed
    ? { ...existing!, state: 'running', error: undefined, checksum: m.checksum }
    : { ...Recorder.fresh(m.id, m.app, m.name, m.checksum, operations), direction };
  if (!resumed) for (let i = 0; i < operations.length; i++) await ctx.executor.clearOperationState(ctx.store, operationRunId(m.id, i, direction));
  await recorder.save(record);
  emit({ type: 'migration-start', migration: m.id, index: progress.index, total: progress.total, resumed });

  try {
    for (let i = record.operationsDone; i < operations.length; i++) {
      lock.check();
      const op = operations[i];
      emit({ type: 'operation-start', migration: m.id, operation: i, operations: operations.length, description: op.describe() });
      let lastSaved = 0;
      const result = await ctx.executor.runOperation({
        store: ctx.store,
        runId: operationRunId(m.id, i, direction),
        operation: op,
        migration: m.id,
        onProgress: (p) => {
          emit({ type: 'progress', migration: m.id, operation: i, progress: p });
          record.operations[i] = { ...record.operations[i], ...pickCounts(p) };
          // Throttled: the record is for `status`, the shards hold the truth.
          if (Date.now() - lastSaved > 2000) {
            lastSaved = Date.now();
            void recorder.save(record).catch(() => undefined);
          }
        },
      });
      record.operations[i] = { ...record.operations[i], ...pickCounts(result), done: true };
      record.operationsDone = i + 1;
      await recorder.save(record);
      emit({ type: 'operation-done', migration: m.id, operation: i, result });
    }
  } catch (error) {
    record.state = 'failed';
    record.error = errorMessage(error);
    record.finishedAt = new Date();
    await recorder.save(record).catch(() => undefined);
    emit({ type: 'migration-failed', migration: m.id, error: record.error });
    throw error instanceof DsMigrateError ? error : new DsMigrateError('MIGRATION_FAILED', `Migration ${m.id} failed: ${record.error}`, { migration: m.id, file: m.file }, { cause: error });
  }

  if (direction === 'reverse') {
    for (let i = 0; i < operations.length; i++) {
      await ctx.executor.clearOperationState(ctx.store, operationRunId(m.id, i, 'reverse'));
      await ctx.executor.clearOperationState(ctx.store, operationRunId(m.id, i, 'forward'));
    }
    await recorder.remove(m.id);
    emit({ type: 'migration-done', migration: m.id, state: 'unapplied' });
    return;
  }
  record.state = 'applied';
  record.finishedAt = new Date();
  await recorder.save(record);
  emit({ type: 'migration-done', migration: m.id, state: 'applied' });
}

function pickCounts(p: OperationProgress): Omit<OperationRecord, 'type' | 'kind' | 'done'> {
  return { scanned: p.scanned, changed: p.changed, deleted: p.deleted, skipped: p.skipped, failed: p.failed, shardsDone: p.shardsDone, shardsTotal: p.shardsTotal };
}
