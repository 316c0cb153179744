import pLimit from 'p-limit';
import { transitionKey } from '../../control';
import type { Datastore } from '../../datastore';
import { DsMigrateError, errorMessage, isDsMigrateError, type ErrorCode } from '../../errors';
import { Lease, Lifecycle, resolverOf, runOwner, type MigrationGraph, type MigrationResolver, type MigrationStep } from '../../migrations';
import { rateFor } from '../local';
import { TaskDispatcher } from './dispatcher';
import { MalformedPayloadError, type PlanPayload, type SlicePayload, type TaskPayload } from './payload';
import { currentMigration, encodeRunState, isCurrentStep, loadRun, type RunState } from './run-state';
import { runSteps, type RunSteps } from './run-steps';
import type { OperationTotals, PlanView, ShardEngine } from './shard-engine';
import type { TasksApi } from './tasks-api';
import { claim, releaseClaim } from './transition-claim';

export interface PipelineDeps {
  store: Datastore;
  /** The migrations as this process loaded them from its files. */
  graph: MigrationGraph;
  /**
   * Finds a run's migration by id; default: in `graph`. The worker adds runtime models' schema
   * migrations, rebuilt from what is stored (src/dynamic), which this layer does not know.
   */
  resolve?: MigrationResolver;
  engine: ShardEngine;
  tasks: TasksApi;
  /** Signs the next tasks of runs that use the shared secret (the emulator). */
  secret?: string;
  log?: (line: string) => void;
}

/** `done`: the step was taken. `stale`: nothing left to do for this task. `failed`: the migration failed for good. */
export interface StepOutcome {
  result: 'done' | 'stale' | 'failed';
  detail: string;
}

/**
 * Errors that another attempt cannot fix: the migration fails and its tasks stop. Everything else is
 * retried, up to the run's maxStepAttempts: MIGRATION_LOAD too (a worker without the run's migration
 * file, or with another version of it), since a rolling deploy fixes that by itself.
 */
const PERMANENT: readonly ErrorCode[] = ['OPERATION_FAILED', 'TYPE_MISMATCH', 'BAD_INPUT', 'UNKNOWN_KIND', 'MODEL_DEFINITION', 'CONFLICT', 'MIGRATION_FAILED'];

export function isPermanent(error: unknown): boolean {
  return error instanceof DsMigrateError && PERMANENT.includes(error.code);
}

const PROGRESS_EVERY_MS = 2000;
/** A transition's claim older than this belongs to a task that died holding it (a transition takes well under a second). */
const CLAIM_STALE_MS = 60_000;
const DISPATCH_PARALLELISM = 16;

/**
 * The Cloud Tasks driver of the lifecycle (src/migrations/lifecycle.ts): moves runs forward one task
 * at a time. Each task names a step (plan a step's job, run a slice of one of its shards); the run's
 * state in Datastore says which step is current, so a task for any other step is acknowledged
 * without effect. A task that finishes a shard checks the shards' checkpoints; when all are done, one
 * transaction checks that the run is still at this step, completes the step through the lifecycle
 * (and finishes the migration after its last step) and moves the run on: whatever the deliveries,
 * each transition happens once. What follows a transition (enqueuing the next step) is repeated by
 * any later task of the run that finds it missing, and by a retry of a transition whose commit
 * outcome was unknown, so a crash or a lost answer in between loses nothing.
 */
export class Pipeline {
  private readonly progressSavedAt = new Map<string, number>();
  private readonly resolve: MigrationResolver;

  constructor(private readonly deps: PipelineDeps) {
    this.resolve = deps.resolve ?? resolverOf(deps.graph);
  }

  /** Runs one task. `attempt` counts its deliveries so far (0 the first); past the run's limit a failing step fails the migration. */
  async run(payload: TaskPayload, attempt = 0): Promise<StepOutcome> {
    const run = await loadRun(this.deps.store, payload.ns, payload.run);
    if (!run) return { result: 'stale', detail: `no run ${payload.run} in namespace "${payload.ns}"` };
    checkNames(run, payload);
    if (!isCurrentStep(run, payload.migration, payload.op)) {
      await this.ensureFollowUp(run);
      return { result: 'stale', detail: `run ${run.id} is ${run.status === 'running' ? `at ${currentMigration(run)?.id} step ${run.op}` : run.status}` };
    }
    const lifecycle = this.lifecycle(run);
    // Checked on every task, so that `dsmigrate unlock` or a run that took over stops this one at once.
    if ((await lifecycle.lease.keep()) === 'lost') {
      await this.abandon(run);
      return { result: 'stale', detail: `run ${run.id} lost the migration lock and stopped` };
    }
    try {
      return payload.type === 'plan' ? await this.plan(run, lifecycle, payload) : await this.slice(run, lifecycle, payload);
    } catch (error) {
      if (error instanceof MalformedPayloadError) throw error;
      if (isDsMigrateError(error, 'JOB_CLOSED') || isDsMigrateError(error, 'JOB_CLEARED') || isDsMigrateError(error, 'LEASE_LOST')) {
        // A closed or cleared job while this run still holds the lease: the run moved on (its migration
        // finished and was tidied) and this task came late. Only a lost lease stops the run.
        if ((await lifecycle.lease.keep()) === 'lost') await this.abandon(run);
        return { result: 'stale', detail: errorMessage(error) };
      }
      const exhausted = attempt + 1 >= run.dispatch.maxStepAttempts;
      if (!isPermanent(error) && !exhausted) throw error;
      const reason =
        exhausted && !isPermanent(error) ? `${errorMessage(error)} (the step failed ${attempt + 1} times; cloudTasks.maxStepAttempts is ${run.dispatch.maxStepAttempts})` : errorMessage(error);
      await this.fail(run, lifecycle, reason);
      return { result: 'failed', detail: reason };
    }
  }

  /** Begins the run's current migration (its record becomes `running`): once per migration per run, in one transaction with the run's state. */
  async beginMigration(runRef: Pick<RunState, 'namespace' | 'id'>): Promise<RunState | undefined> {
    return this.deps.store.transaction(async (tx) => {
      const run = await loadRun(tx, runRef.namespace, runRef.id);
      if (!run || run.status !== 'running' || run.started >= run.current) return run;
      const { migration } = await this.stepsOf(run);
      await this.lifecycle(run).begin(migration, run.direction, tx);
      const begun: RunState = { ...run, started: run.current, op: 0, shards: null, job: null };
      tx.upsert(encodeRunState(begun));
      return begun;
    });
  }

  /** The dispatcher that sends this run's tasks, as the run was configured. */
  dispatcher(run: RunState): TaskDispatcher {
    const { dispatch } = run;
    if (dispatch.auth.kind === 'hmac' && !this.deps.secret) {
      throw new DsMigrateError('CLOUD_TASKS', `Run ${run.id} signs its tasks with a shared secret, and this process has none: set DSMIGRATE_WORKER_SECRET.`);
    }
    const auth = dispatch.auth.kind === 'hmac' ? { kind: 'hmac' as const, secret: this.deps.secret! } : dispatch.auth;
    return new TaskDispatcher(this.deps.tasks, { queue: dispatch.queue, url: dispatch.url, auth, dispatchDeadlineMs: dispatch.dispatchDeadlineMs });
  }

  /** The task that plans the run's current step. */
  static planTask(run: RunState, page = 0): PlanPayload {
    return { v: 1, type: 'plan', ns: run.namespace, run: run.id, migration: currentMigration(run)!.id, op: run.op, page };
  }

  // ---- steps ----

  private async plan(run: RunState, lifecycle: Lifecycle, payload: PlanPayload): Promise<StepOutcome> {
    if (run.started < run.current) {
      const begun = await this.beginMigration(run);
      if (!begun || !isCurrentStep(begun, payload.migration, payload.op)) {
        if (begun) await this.ensureFollowUp(begun);
        return { result: 'done', detail: `began ${payload.migration}` };
      }
      run = begun;
    }
    const { migration, steps } = await this.stepsOf(run);
    const claimant = `plan/${payload.page}`;
    const step = steps[run.op];
    if (!step) {
      await this.completeIfDone(run, lifecycle, undefined, claimant);
      return { result: 'done', detail: `${payload.migration} has no step left` };
    }
    const start = await lifecycle.startStep(migration, step, run.direction);
    if (start.skip) {
      await this.completeIfDone(run, lifecycle, step, claimant);
      return { result: 'done', detail: `${payload.migration} step ${payload.op} has nothing to do in this direction` };
    }
    const withJob = await this.recordJob(run, start.job.id);
    if (!withJob) return { result: 'stale', detail: `run ${run.id} moved on while ${payload.migration} step ${payload.op} was planned` };
    run = withJob;
    const { engine, store } = this.deps;
    const started = Date.now();
    const rate = rateFor(step.operation, run.dispatch.maxEntitiesPerSecond);
    let known = run.shards ?? 0;
    let view: PlanView = await engine.ensurePlan(store, step.operation, start.job, start.bounds, rate);
    // Shards are dispatched as soon as they are cut, and before they are recorded in the run: a crash
    // in between dispatches them again, and their names dedupe. A rate-limited job's slices each take
    // the rate divided by the job's shards, so they wait for the whole plan: a share taken from fewer
    // shards would let the first slices and the later ones together exceed the rate.
    for (;;) {
      if (!rate || !view.pending) {
        await this.dispatchFirstSlices(run, known, view.shards);
        known = view.shards;
      }
      if (!view.pending || Date.now() - started >= run.dispatch.sliceBudgetMs) break;
      view = await engine.extendPlan(store, step.operation, start.job);
    }
    // The shards dispatched, which a later page's task starts from.
    const current = await this.recordShards(run, known);
    if (!current) return { result: 'stale', detail: `run ${run.id} moved on while ${payload.migration} step ${payload.op} was planned` };
    if (view.pending) await this.dispatcher(run).enqueue({ ...payload, page: payload.page + 1 });
    // All shards may be done already (none at all, or fast ones while later pages were cut).
    else await this.completeIfDone(current, lifecycle, step, claimant);
    return { result: 'done', detail: `${view.shards} shard(s) planned${view.pending ? ', more to cut' : ''}` };
  }

  private async slice(run: RunState, lifecycle: Lifecycle, payload: SlicePayload): Promise<StepOutcome> {
    if (run.started < run.current || run.job === null) return { result: 'stale', detail: `${payload.migration} step ${payload.op} is not planned yet` };
    const { steps } = await this.stepsOf(run);
    const step = steps[run.op];
    const job = { namespace: run.namespace, id: run.job };
    let done: boolean;
    try {
      ({ done } = await this.deps.engine.runSlice({
        store: this.deps.store,
        operation: step.operation,
        job,
        shard: payload.shard,
        budgetMs: run.dispatch.sliceBudgetMs,
        migration: payload.migration,
        rate: rateFor(step.operation, run.dispatch.maxEntitiesPerSecond),
      }));
    } catch (error) {
      // A shard the job does not have: a task we never sent. Refused without touching the run.
      if (isDsMigrateError(error, 'BAD_INPUT') && error.context.shard === payload.shard && error.context.job === job.id) throw new MalformedPayloadError(errorMessage(error));
      throw error;
    }
    if (!done) {
      await this.dispatcher(run).enqueue({ ...payload, slice: payload.slice + 1 });
      await this.saveProgress(run, lifecycle, step);
      return { result: 'done', detail: `shard ${payload.shard} slice ${payload.slice} done, continues` };
    }
    const moved = await this.completeIfDone(run, lifecycle, step, `slice/${payload.shard}/${payload.slice}`);
    return { result: 'done', detail: `shard ${payload.shard} finished${moved ? `; ${payload.migration} step ${payload.op} complete` : ''}` };
  }

  // ---- transitions ----

  /** Notes the step's job in the run, before any of its slices is dispatched. Undefined if the run moved on. */
  private async recordJob(run: RunState, job: string): Promise<RunState | undefined> {
    return this.transition(run, (fresh) => (fresh.job === job ? undefined : { ...fresh, job }));
  }

  /** Notes how many shards the step's job has so far (only ever more). Undefined if the run moved on. */
  private async recordShards(run: RunState, shards: number): Promise<RunState | undefined> {
    return this.transition(run, (fresh) => (fresh.shards !== null && fresh.shards >= shards ? undefined : { ...fresh, shards }));
  }

  /** Changes the run's state if it is still at `run`'s step; `change` returns undefined for no change. */
  private async transition(run: RunState, change: (fresh: RunState) => RunState | undefined): Promise<RunState | undefined> {
    const migrationId = currentMigration(run)!.id;
    return this.deps.store.transaction(async (tx) => {
      const fresh = await loadRun(tx, run.namespace, run.id);
      if (!fresh || !isCurrentStep(fresh, migrationId, run.op)) return undefined;
      const updated = change(fresh);
      if (!updated) return fresh;
      tx.upsert(encodeRunState(updated));
      return updated;
    });
  }

  /**
   * Moves the run past its current step once the step's job is planned and finished (as its shards'
   * own checkpoints say), or at once for a step with nothing to do: the lifecycle completes the step
   * (and finishes the migration after its last), and the run goes on, all in one transaction that
   * first checks the run is still at this step, so it happens once. Returns whether this call moved the run.
   */
  private async completeIfDone(run: RunState, lifecycle: Lifecycle, step: MigrationStep | undefined, claimant: string): Promise<boolean> {
    const { store, engine } = this.deps;
    const { migration, steps } = await this.stepsOf(run);
    let totals: OperationTotals | undefined;
    if (step && run.job !== null) {
      totals = await engine.totals(store, { namespace: run.namespace, id: run.job });
      if (!totals?.complete) return false;
    }
    const key = transitionKey(run.namespace, run.id, run.current, run.op);
    if (!(await claim(store, key, claimant, CLAIM_STALE_MS))) {
      // Another task is moving the run. It may have moved it and failed after its commit applied, in a
      // delivery nobody retries (a duplicate): then what follows is ours to do. Or it is still at it, or
      // died: then this task is retried until the run has moved on or the claim is stale.
      const now = await loadRun(store, run.namespace, run.id);
      if (!now || !isCurrentStep(now, migration.id, run.op)) {
        if (now) await this.ensureFollowUp(now);
        return false;
      }
      throw new DsMigrateError('CLOUD_TASKS', `Another task is completing ${migration.id} step ${run.op} of run ${run.id}; retried until the run has moved on.`, { migration: migration.id });
    }
    const advanced = await store
      .transaction(async (tx) => {
        const fresh = await loadRun(tx, run.namespace, run.id);
        if (!fresh || !isCurrentStep(fresh, migration.id, run.op)) return undefined;
        if (step) await lifecycle.completeStep(migration, step, fresh.direction, totals, tx);
        const next: RunState = { ...fresh, op: fresh.op + 1, shards: null, job: null };
        if (next.op >= steps.length) {
          await lifecycle.finish(migration, fresh.direction, tx);
          Object.assign(next, { current: fresh.current + 1, op: 0 });
          if (next.current >= next.migrations.length) Object.assign(next, { status: 'done', finishedAt: new Date() });
        }
        tx.upsert(encodeRunState(next));
        return next;
      })
      .catch(async (error: unknown) => {
        // Applied or not, the claim must not outlive this attempt: a delivery that is not retried would
        // otherwise keep every other task of the step from moving the run until it is stale.
        await releaseClaim(store, key).catch(() => undefined);
        throw error;
      });
    await releaseClaim(store, key);
    if (advanced) await this.afterAdvance(run, advanced, lifecycle);
    // Not moved by us: moved already, perhaps by an attempt of this very task whose commit answered
    // with an error after it was applied. Whatever follows the transition must still happen.
    else {
      const now = await loadRun(store, run.namespace, run.id);
      if (now) await this.ensureFollowUp(now);
    }
    return advanced !== undefined;
  }

  /** What follows a transition; also repeated by later tasks of the run (ensureFollowUp) if it was lost. */
  private async afterAdvance(before: RunState, after: RunState, lifecycle: Lifecycle): Promise<void> {
    const { migration } = await this.stepsOf(before);
    const finished = after.current !== before.current;
    this.deps.log?.(`run ${after.id}: ${migration.id} step ${before.op} done${finished ? `; migration ${before.direction === 'forward' ? 'applied' : 'unapplied'}` : ''}`);
    if (finished) await lifecycle.tidy(migration).catch((error) => this.deps.log?.(`could not tidy up after ${migration.id}: ${errorMessage(error)}`));
    await this.ensureFollowUp(after);
  }

  /** Enqueues the run's current step if nothing has planned it yet (its name dedupes); releases the lease of a run that ended. */
  private async ensureFollowUp(run: RunState): Promise<void> {
    if (run.status === 'running' && run.shards === null) await this.dispatcher(run).enqueue(Pipeline.planTask(run));
    if (run.status === 'done' || run.status === 'failed') {
      await this.lifecycle(run).lease.release();
      this.forget(run);
    }
  }

  private async fail(run: RunState, lifecycle: Lifecycle, message: string): Promise<void> {
    this.deps.log?.(`run ${run.id}: ${currentMigration(run)?.id} failed: ${message}`);
    // By id only: a migration this process cannot resolve (not deployed, not rebuildable) must still fail.
    const migration = currentMigration(run)!;
    await this.deps.store.transaction(async (tx) => {
      const fresh = await loadRun(tx, run.namespace, run.id);
      if (!fresh || fresh.status !== 'running') return;
      await lifecycle.fail(migration, message, tx);
      tx.upsert(encodeRunState({ ...fresh, status: 'failed', error: message, finishedAt: new Date() }));
    });
    await lifecycle.lease.release();
    this.forget(run);
  }

  /** The lease was broken or taken: stop here. The migration's record stays as it is, for the next run to resume. */
  private async abandon(run: RunState): Promise<void> {
    this.deps.log?.(`run ${run.id}: the migration lock is no longer its own; stopping`);
    await this.deps.store.transaction(async (tx) => {
      const fresh = await loadRun(tx, run.namespace, run.id);
      if (!fresh || fresh.status !== 'running') return;
      const error = 'The migration lock was broken or taken by another run; this run stopped. The next `dsmigrate migrate` resumes it.';
      tx.upsert(encodeRunState({ ...fresh, status: 'abandoned', error, finishedAt: new Date() }));
    });
    this.forget(run);
  }

  // ---- upkeep ----

  private stepsOf(run: RunState): Promise<RunSteps> {
    return runSteps(this.resolve, currentMigration(run)!, run.direction);
  }

  private lifecycle(run: RunState): Lifecycle {
    return new Lifecycle(this.deps.store, new Lease(this.deps.store, run.namespace, runOwner(run.id), run.leaseTtlMs));
  }

  private forget(run: RunState): void {
    for (const key of this.progressSavedAt.keys()) if (key.startsWith(`${run.id}/`)) this.progressSavedAt.delete(key);
  }

  private async dispatchFirstSlices(run: RunState, from: number, to: number): Promise<void> {
    const dispatcher = this.dispatcher(run);
    const limit = pLimit(DISPATCH_PARALLELISM);
    const migration = currentMigration(run)!.id;
    const tasks: Promise<unknown>[] = [];
    for (let shard = from; shard < to; shard++) {
      tasks.push(limit(() => dispatcher.enqueue({ v: 1, type: 'slice', ns: run.namespace, run: run.id, migration, op: run.op, shard, slice: 0 })));
    }
    await Promise.all(tasks);
  }

  /** Copies the step's counts into its record for `status`, every few seconds from each process. */
  private async saveProgress(run: RunState, lifecycle: Lifecycle, step: MigrationStep): Promise<void> {
    const key = `${run.id}/${run.current}/${run.op}`;
    if (run.job === null || Date.now() - (this.progressSavedAt.get(key) ?? 0) < PROGRESS_EVERY_MS) return;
    this.progressSavedAt.set(key, Date.now());
    const totals = await this.deps.engine.totals(this.deps.store, { namespace: run.namespace, id: run.job });
    if (totals) await lifecycle.saveProgress((await this.stepsOf(run)).migration, step, run.direction, totals);
  }
}

/** A task naming a migration or step the run does not have was never sent by us: refused, the run untouched. */
function checkNames(run: RunState, payload: TaskPayload): void {
  const planned = run.migrations.find((m) => m.id === payload.migration);
  if (!planned) throw new MalformedPayloadError(`run ${run.id} has no migration ${payload.migration}`);
  if (payload.op >= Math.max(1, planned.steps.length)) throw new MalformedPayloadError(`migration ${payload.migration} has ${planned.steps.length} step(s) in run ${run.id}, not a step ${payload.op}`);
}
