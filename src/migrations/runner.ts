import type { Datastore } from '../datastore';
import { DsMigrateError, errorMessage, isDsMigrateError } from '../errors';
import { zeroJobCounts } from '../sharding';
import type { Executor, OperationResult } from './executor';
import type { MigrationGraph } from './graph';
import { emptyScopeMessage, emptyScopeOf, emptyScopes, refuseEmptyScopes } from './empty-scopes';
import { describeStep, pendingPlan, type MigrationStep, type Plan } from './planning';
import { Run, type RunRequest } from './run';

export interface MigrateOptions extends RunRequest {
  fake?: boolean;
  dryRun?: boolean;
  lockTtlMs?: number;
}

export interface MigrateSummary {
  /** The run, for `dsmigrate status --watch`; undefined when nothing ran. */
  run?: string;
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
  /** The namespace of every control kind (records, lease, runs, jobs, checkpoints). */
  controlNamespace?: string;
}

/**
 * The local driver: a loop over the run (src/migrations/run.ts), each step's job run by the executor in
 * this process. The lease is renewed in the background; once it is lost the job stops within one
 * batch, and the run writes nothing more.
 */
export async function migrate(ctx: RunnerContext, options: MigrateOptions = {}): Promise<MigrateSummary> {
  const namespace = ctx.controlNamespace ?? '';
  if (options.dryRun) return dryRun(ctx, namespace, options);
  const emit = options.onEvent ?? (() => undefined);
  const command = `migrate ${options.target ?? ''}`.trim();
  // The plan as the records stand, made without the lease (it writes nothing) while Run.open takes it: the
  // first step's keys are then read half a dozen round trips sooner. Run.open plans again under the lease;
  // a read-ahead of another step is let go then, and none starts once it has planned. A hint that fails
  // (this plan refused, an executor's readAhead throwing) is no hint: Run.open meets the same refusal.
  let planned = false;
  if (ctx.executor.readAhead && !options.fake && !options.restart?.length) {
    pendingPlan(ctx.store, ctx.graph, namespace, options)
      .then((early) => planned || readAheadFirstStep(ctx, early.plan))
      .catch(() => undefined);
  }
  let opened: Awaited<ReturnType<typeof Run.open>>;
  try {
    opened = await Run.open({
      ...options,
      store: ctx.store,
      graph: ctx.graph,
      namespace,
      driver: 'local',
      leaseTtlMs: options.lockTtlMs ?? 60_000,
      command,
      onPlan: options.fake
        ? undefined
        : (plan) => {
            planned = true;
            readAheadFirstStep(ctx, plan);
          },
    });
  } catch (error) {
    ctx.executor.readAhead?.(ctx.store, undefined);
    throw error;
  } finally {
    planned = true;
  }
  const { run, plan, restarted } = opened;
  const summary: MigrateSummary = { run: run?.state.id, applied: [], unapplied: [], faked: [], restarted, dryRun: [] };
  if (!run) {
    ctx.executor.readAhead?.(ctx.store, undefined);
    return summary;
  }
  const signal = run.keepLease();
  try {
    if (options.fake) await run.fake();
    for (let ready = await run.next(); ready; ready = await run.next()) {
      const { migration, position } = ready;
      const result = await ctx.executor.runOperation({
        store: ctx.store,
        job: ready.job,
        bounds: ready.bounds,
        operation: ready.step.operation,
        migration: migration.id,
        signal,
        onProgress: (progress) => emit({ type: 'progress', migration: migration.id, operation: position, progress }),
        onLog: (message) => emit({ type: 'log', migration: migration.id, operation: position, message }),
      });
      await run.complete(await withEmptyKindWarning(ctx.store, migration.id, ready.step, result));
    }
  } catch (error) {
    // A lost lease is the reason to report, whatever the job threw on its way out; such a run writes nothing more.
    if (signal.aborted) throw signal.reason;
    await run.settle(error).catch(() => undefined);
    const current = run.state.migrations[run.state.current];
    // The direction and the run's target say how to go on (src/migrations/planning.ts recoveryAdvice).
    const { direction, target } = run.state;
    if (isDsMigrateError(error) && current) Object.assign(error.context, { migration: error.context.migration ?? current.id, direction, target });
    throw isDsMigrateError(error) || !current
      ? error
      : new DsMigrateError('MIGRATION_FAILED', `Migration ${current.id} failed: ${errorMessage(error)}`, { migration: current.id, direction, target }, { cause: error });
  } finally {
    await run.release().catch(() => undefined);
  }
  const finished = run.finished();
  if (options.fake && plan.direction === 'forward') summary.faked = finished;
  else if (plan.direction === 'forward') summary.applied = finished;
  else summary.unapplied = finished;
  return summary;
}

/** A migration no run has begun reads its first step's keys while the run's lifecycle goes on (Executor.readAhead); any other plan reads nothing ahead. */
function readAheadFirstStep(ctx: RunnerContext, plan: Plan): void {
  const [first] = plan.migrations;
  const step = plan.direction === 'forward' && first && !first.started ? first.steps[0] : undefined;
  ctx.executor.readAhead?.(ctx.store, step?.operation);
}

/** `--dry-run`: the plan from the records as they are, each step's per-entity logic run, nothing written and no lease taken. */
async function dryRun(ctx: RunnerContext, namespace: string, options: MigrateOptions): Promise<MigrateSummary> {
  const emit = options.onEvent ?? (() => undefined);
  const summary: MigrateSummary = { applied: [], unapplied: [], faked: [], restarted: [], dryRun: [] };
  const { plan } = await pendingPlan(ctx.store, ctx.graph, namespace, options);
  if (options.strict) refuseEmptyScopes(await emptyScopes(ctx.store, plan));
  emit({ type: 'plan', direction: plan.direction, migrations: plan.migrations.map((p) => p.migration.id), purpose: 'dry-run' });
  for (const { migration: m, steps } of plan.migrations) {
    for (const [position, step] of steps.entries()) {
      const description = describeStep(step);
      // A no-op back-out leaves the data as it is: there is nothing to try.
      const result = step.noop
        ? { ...zeroJobCounts(), warnings: [] }
        : await ctx.executor.runOperation({
            store: ctx.store,
            job: { namespace, id: `dry-run:${m.id}#${step.index}` },
            operation: step.operation,
            dryRun: true,
            migration: m.id,
            onLog: (message) => emit({ type: 'log', migration: m.id, operation: position, message }),
          });
      const checked = await withEmptyKindWarning(ctx.store, m.id, step, result);
      summary.dryRun.push({ migration: m.id, operation: position, description, result: checked });
      emit({ type: 'dry-run', migration: m.id, operation: position, description, result: checked });
    }
  }
  return summary;
}

/** A step that scanned nothing because its kind has no entities (a typo, most often) says so, naming the kinds that look alike. */
async function withEmptyKindWarning(store: Datastore, migration: string, step: MigrationStep, result: OperationResult): Promise<OperationResult> {
  if (result.scanned > 0) return result;
  const empty = await emptyScopeOf(store, migration, step);
  return empty ? { ...result, warnings: [...result.warnings, emptyScopeMessage(empty)] } : result;
}
