import type { Datastore } from '../datastore';
import { DsMigrateError, errorMessage, isDsMigrateError } from '../errors';
import type { Executor, OperationProgress, OperationResult } from './executor';
import { resolveTarget, type MigrationGraph } from './graph';
import { Lease, processOwner } from './lease';
import { Lifecycle } from './lifecycle';
import { planWith, type Plan, type PlannedMigration } from './planning';
import { Recorder, type Direction, type MigrationState } from './recorder';

export type RunEvent =
  | { type: 'plan'; direction: Direction; migrations: string[] }
  | { type: 'migration-start'; migration: string; index: number; total: number; resumed: boolean }
  | { type: 'operation-start'; migration: string; operation: number; operations: number; description: string }
  | { type: 'progress'; migration: string; operation: number; progress: OperationProgress }
  | { type: 'operation-done'; migration: string; operation: number; result: OperationResult }
  | { type: 'migration-done'; migration: string; state: MigrationState | 'unapplied' }
  | { type: 'migration-failed'; migration: string; error: string }
  | { type: 'dry-run'; migration: string; operation: number; description: string; result: OperationResult };

export interface MigrateOptions {
  /** Stop at this migration (`name`, its number, or `app:name`); an applied target unapplies what came after it; `zero` unapplies all. */
  target?: string;
  fake?: boolean;
  dryRun?: boolean;
  allowChanged?: boolean;
  /** Forget these failed migrations' state first, so that their fixed files run from the start. */
  restart?: readonly string[];
  lockWaitMs?: number;
  lockTtlMs?: number;
  onEvent?: (event: RunEvent) => void;
}

export interface MigrateSummary {
  applied: string[];
  unapplied: string[];
  faked: string[];
  restarted: string[];
  dryRun: { migration: string; operation: number; description: string; result: OperationResult }[];
}

export interface RunnerContext {
  store: Datastore;
  graph: MigrationGraph;
  executor: Executor;
  /** The namespace of every control kind (records, lease, jobs, checkpoints). */
  controlNamespace?: string;
}

const PROGRESS_SAVE_MS = 2000;
const EMPTY_RESULT: OperationResult = { scanned: 0, changed: 0, deleted: 0, skipped: 0, failed: 0, shardsDone: 0, shardsTotal: 0, warnings: [] };

/**
 * The local driver of the lifecycle: takes the lease, plans under it, and runs each step's job with
 * the executor in this process, recording every step through the lifecycle. A migration is `applied`
 * only once every step is complete; until then it is `running` (or `failed`) with what ran, and the
 * next run resumes it, in either direction.
 */
export async function migrate(ctx: RunnerContext, options: MigrateOptions = {}): Promise<MigrateSummary> {
  const emit = options.onEvent ?? (() => undefined);
  const namespace = ctx.controlNamespace ?? '';
  const summary: MigrateSummary = { applied: [], unapplied: [], faked: [], restarted: [], dryRun: [] };
  if (options.dryRun) return dryRun(ctx, options, summary);

  const lease = new Lease(ctx.store, namespace, processOwner(), options.lockTtlMs ?? 60_000);
  await lease.acquire(`migrate ${options.target ?? ''}`.trim(), options.lockWaitMs);
  const signal = lease.keepRenewed();
  try {
    const lifecycle = new Lifecycle(ctx.store, lease);
    for (const name of options.restart ?? []) {
      const m = resolveTarget(ctx.graph, name);
      await lifecycle.restart(m);
      summary.restarted.push(m.id);
    }
    const plan = await lifecycle.prepare(ctx.graph, options);
    emit({ type: 'plan', direction: plan.direction, migrations: plan.migrations.map((p) => p.migration.id) });
    for (const [index, planned] of plan.migrations.entries()) {
      signal.throwIfAborted();
      const { migration: m } = planned;
      if (options.fake) {
        await lifecycle.fake(m, plan.direction);
        (plan.direction === 'forward' ? summary.faked : summary.unapplied).push(m.id);
        emit({ type: 'migration-done', migration: m.id, state: plan.direction === 'forward' ? 'faked' : 'unapplied' });
        continue;
      }
      await runMigration(ctx, lifecycle, signal, plan, planned, { index, emit });
      (plan.direction === 'forward' ? summary.applied : summary.unapplied).push(m.id);
    }
  } catch (error) {
    // A lost lease is the reason to report, whatever the job threw on its way out.
    throw signal.aborted ? signal.reason : error;
  } finally {
    lease.stopRenewing();
    await lease.release().catch(() => undefined);
  }
  return summary;
}

async function runMigration(ctx: RunnerContext, lifecycle: Lifecycle, signal: AbortSignal, plan: Plan, planned: PlannedMigration, at: { index: number; emit: (e: RunEvent) => void }): Promise<void> {
  const { migration: m, steps } = planned;
  const { direction } = plan;
  const { emit } = at;
  const { resumed } = await lifecycle.begin(m, direction);
  emit({ type: 'migration-start', migration: m.id, index: at.index, total: plan.migrations.length, resumed });
  try {
    for (const [position, step] of steps.entries()) {
      signal.throwIfAborted();
      const description = step.operation.describe();
      emit({ type: 'operation-start', migration: m.id, operation: position, operations: steps.length, description });
      const start = await lifecycle.startStep(m, step, direction);
      if (start.skip) {
        emit({ type: 'operation-done', migration: m.id, operation: position, result: EMPTY_RESULT });
        continue;
      }
      const progress = new ProgressSaver((counts) => lifecycle.saveProgress(m, step, direction, counts));
      const result = await ctx.executor.runOperation({
        store: ctx.store,
        job: start.job,
        bounds: start.bounds,
        operation: step.operation,
        migration: m.id,
        signal,
        onProgress: (p) => {
          emit({ type: 'progress', migration: m.id, operation: position, progress: p });
          progress.offer(p);
        },
      });
      await progress.stop();
      await lifecycle.completeStep(m, step, direction, result);
      emit({ type: 'operation-done', migration: m.id, operation: position, result });
    }
    await lifecycle.finish(m, direction);
  } catch (error) {
    if (signal.aborted) throw signal.reason;
    await lifecycle.fail(m, error).catch(() => undefined);
    emit({ type: 'migration-failed', migration: m.id, error: errorMessage(error) });
    throw isDsMigrateError(error) ? error : new DsMigrateError('MIGRATION_FAILED', `Migration ${m.id} failed: ${errorMessage(error)}`, { migration: m.id, file: m.file }, { cause: error });
  }
  await lifecycle.tidy(m).catch(() => undefined);
  emit({ type: 'migration-done', migration: m.id, state: direction === 'forward' ? 'applied' : 'unapplied' });
}

/**
 * Saves progress for `status` every few seconds, one save at a time, and none once stopped: a late
 * save can neither race the step's completion nor follow it.
 */
class ProgressSaver {
  private last = 0;
  private pending: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(private readonly save: (p: OperationProgress) => Promise<void>) {}

  offer(progress: OperationProgress): void {
    if (this.stopped || Date.now() - this.last < PROGRESS_SAVE_MS) return;
    this.last = Date.now();
    this.pending = this.pending.then(() => (this.stopped ? undefined : this.save(progress).catch(() => undefined)));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.pending;
  }
}

/** `--dry-run`: the plan from the records as they are, each step's per-entity logic run, nothing written and no lease taken. */
async function dryRun(ctx: RunnerContext, options: MigrateOptions, summary: MigrateSummary): Promise<MigrateSummary> {
  const emit = options.onEvent ?? (() => undefined);
  const namespace = ctx.controlNamespace ?? '';
  const records = await new Recorder(ctx.store, namespace).list();
  const plan = await planWith(ctx.store, ctx.graph, records, options);
  emit({ type: 'plan', direction: plan.direction, migrations: plan.migrations.map((p) => p.migration.id) });
  for (const { migration: m, steps } of plan.migrations) {
    for (const [position, step] of steps.entries()) {
      const description = step.operation.describe();
      const result = await ctx.executor.runOperation({ store: ctx.store, job: { namespace, id: `dry-run:${m.id}#${step.index}` }, operation: step.operation, dryRun: true, migration: m.id });
      summary.dryRun.push({ migration: m.id, operation: position, description, result });
      emit({ type: 'dry-run', migration: m.id, operation: position, description, result });
    }
  }
  return summary;
}
