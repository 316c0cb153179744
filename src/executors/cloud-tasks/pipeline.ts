import pLimit from 'p-limit';
import { transitionKey } from '../../control';
import type { Datastore } from '../../datastore';
import { DsMigrateError, errorMessage, isDsMigrateError } from '../../errors';
import { isCurrentStep, operationOf, resolverOf, Run, type JobCounts, type MigrationGraph, type MigrationResolver, type ReadyStep, type RunState } from '../../migrations';
import { isRunFunction, type RunFunction } from '../../operations';
import { Job, jobTotals, loadShardStates, zeroJobCounts, type JobLayout, type SliceResult } from '../../sharding';
import { runFunctionStep } from '../function-step';
import { TaskDispatcher } from './dispatcher';
import { dispatchOf } from './dispatch-spec';
import { MalformedPayloadError, type StartPayload, type SlicePayload, type TaskPayload } from './payload';
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

/** A transition's claim older than this belongs to a task that died holding it (a transition takes well under a second). */
const CLAIM_STALE_MS = 60_000;
const DISPATCH_PARALLELISM = 16;

/**
 * The Cloud Tasks driver: takes one transition of a run (src/migrations/run.ts) per task. Each task
 * names a step (start a step: lay out its job's shards and dispatch them; or run a slice of one shard); the stored run says which step is
 * current, so a task for any other step is acknowledged without effect. A task that finishes a shard
 * checks the shards' checkpoints; when all are done the run completes the step, once whatever the
 * deliveries. What follows a transition (enqueuing the next step) is repeated by any later task of the
 * run that finds it missing, and by a retry of a transition whose commit outcome was unknown.
 */
export class Pipeline {
  private readonly resolve: MigrationResolver;

  constructor(private readonly deps: PipelineDeps) {
    this.resolve = deps.resolve ?? resolverOf(deps.graph);
  }

  /** Runs one task. A step that keeps failing fails its migration once the run has counted maxStepAttempts failures of it (Run.settle). */
  async run(payload: TaskPayload): Promise<StepOutcome> {
    const run = await Run.load(this.deps.store, payload.ns, payload.run, this.resolve);
    if (!run) return { result: 'stale', detail: `no run ${payload.run} in namespace "${payload.ns}"` };
    checkNames(run.state, payload);
    if (!isCurrentStep(run.state, payload.migration, payload.step)) {
      await this.ensureFollowUp(run);
      return { result: 'stale', detail: `run ${run.state.id} is ${run.state.status === 'running' ? `at ${payload.migration} step ${run.state.step}` : run.state.status}` };
    }
    // Checked on every task, so that `dsmigrate unlock` or a run that took over stops this one at once.
    // A run that lost its lease writes nothing, not even that it stopped: the new holder marks it.
    if (!(await run.holdsLease())) return { result: 'stale', detail: `run ${run.state.id} lost the migration lock and stops` };
    try {
      return payload.type === 'start' ? await this.start(run, payload) : await this.slice(run, payload);
    } catch (error) {
      if (error instanceof MalformedPayloadError || error instanceof TransitionBusy) throw error;
      const settled = await run.settle(error, dispatchOf(run.state).maxStepAttempts);
      if (settled === 'retry') throw error;
      if (settled === 'stale') return { result: 'stale', detail: errorMessage(error) };
      this.deps.log?.(`run ${run.state.id}: ${payload.migration} failed: ${run.state.error}`);
      return { result: 'failed', detail: run.state.error ?? errorMessage(error) };
    }
  }

  /** The dispatcher that sends this run's tasks, as the run was configured. */
  dispatcher(run: RunState): TaskDispatcher {
    const dispatch = dispatchOf(run);
    if (dispatch.auth.kind === 'hmac' && !this.deps.secret) {
      throw new DsMigrateError('CLOUD_TASKS', `Run ${run.id} signs its tasks with a shared secret, and this process has none: set DSMIGRATE_WORKER_SECRET.`);
    }
    const auth = dispatch.auth.kind === 'hmac' ? { kind: 'hmac' as const, secret: this.deps.secret! } : dispatch.auth;
    return new TaskDispatcher(this.deps.tasks, { queue: dispatch.queue, url: dispatch.url, auth, dispatchDeadlineMs: dispatch.dispatchDeadlineMs });
  }

  /** The task that starts the run's current step. */
  static startTask(run: RunState, page = 0): StartPayload {
    return { v: 2, type: 'start', ns: run.namespace, run: run.id, migration: run.migrations[run.current].id, step: run.step, page };
  }

  // ---- steps ----

  private async start(run: Run, payload: StartPayload): Promise<StepOutcome> {
    await run.begin();
    if (!isCurrentStep(run.state, payload.migration, payload.step)) {
      await this.ensureFollowUp(run);
      return { result: 'done', detail: `began ${payload.migration}` };
    }
    // Only the step's next page lays out shards. The one before it, delivered again after its page was
    // recorded, makes sure the next was sent (its name dedupes); any other page is not one we sent.
    const expected = run.state.page;
    if (payload.page !== expected) {
      if (payload.page === expected - 1) await this.dispatcher(run.state).enqueue({ ...payload, page: expected });
      return { result: 'stale', detail: `start page ${payload.page} of ${payload.migration} step ${payload.step} is not its next one (${expected})` };
    }
    const claimant = `start/${payload.page}`;
    const ready = await run.startStep();
    if (!ready) {
      await this.completeIfDone(run, claimant);
      return { result: 'done', detail: `${payload.migration} step ${payload.step} has nothing to do in this direction` };
    }
    if (!isCurrentStep(run.state, payload.migration, payload.step) || run.state.job !== ready.job.id) {
      return { result: 'stale', detail: `run ${run.state.id} moved on while ${payload.migration} step ${payload.step} was started` };
    }
    const { operation } = ready.step;
    if (isRunFunction(operation)) return this.runFunction(run, ready, operation, claimant);
    const dispatch = dispatchOf(run.state);
    const job = new Job(this.deps.store, ready.job, operationOf({ job: ready.job, operation }), dispatch.maxEntitiesPerSecond);
    const started = Date.now();
    const rate = job.rate();
    let known = run.state.shards ?? 0;
    let layout: JobLayout = await job.layout(ready.bounds);
    // Shards are dispatched as soon as they are cut, and before they are recorded in the run: a crash
    // in between dispatches them again, and their names dedupe. A rate-limited job's slices each take
    // the rate divided by the job's shards, so they wait for the whole layout: a share taken from fewer
    // shards would let the first slices and the later ones together exceed the rate.
    for (;;) {
      const pending = layout.pending.length > 0;
      if (!rate || !pending) {
        await this.dispatchFirstSlices(run.state, layout, known, layout.shards.length);
        known = layout.shards.length;
      }
      if (!pending || Date.now() - started >= dispatch.sliceBudgetMs) break;
      layout = await job.extend();
    }
    // The shards dispatched, which a later page's task starts from.
    await run.recordShards(known, payload.page + 1);
    if (!isCurrentStep(run.state, payload.migration, payload.step)) return { result: 'stale', detail: `run ${run.state.id} moved on while ${payload.migration} step ${payload.step} was started` };
    const pending = layout.pending.length > 0;
    if (pending) await this.dispatcher(run.state).enqueue({ ...payload, page: payload.page + 1 });
    // All shards may be done already (none at all, or fast ones while later pages were cut).
    else await this.completeIfDone(run, claimant);
    return { result: 'done', detail: `${layout.shards.length} shard(s) laid out${pending ? ', more to cut' : ''}` };
  }

  /**
   * A RunFunction step runs whole in its start task, the lease kept renewed meanwhile (no other task of
   * the run runs to renew it), and the run completes the step with its count. A redelivery before the
   * step is complete runs it again: the function must be idempotent (docs/operations.md).
   */
  private async runFunction(run: Run, ready: ReadyStep, operation: RunFunction, claimant: string): Promise<StepOutcome> {
    const where = `${ready.migration.id} step ${ready.position}`;
    const signal = run.keepLease();
    let result;
    try {
      result = await runFunctionStep(operation, {
        store: this.deps.store,
        job: ready.job,
        operation,
        migration: ready.migration.id,
        signal,
        onLog: (message) => this.deps.log?.(`run ${run.state.id}: ${where}: ${message}`),
      });
    } finally {
      run.stopKeepingLease();
    }
    if (signal.aborted) return { result: 'stale', detail: `run ${run.state.id} lost the migration lock while ${where} ran` };
    await this.completeIfDone(run, claimant, result);
    return { result: 'done', detail: `${where} ran ${operation.describe()}` };
  }

  private async slice(run: Run, payload: SlicePayload): Promise<StepOutcome> {
    const { state } = run;
    if (state.started < state.current || state.job === null) return { result: 'stale', detail: `${payload.migration} step ${payload.step} has not started yet` };
    const { steps } = await run.current();
    const step = steps[state.step];
    const ref = { namespace: state.namespace, id: state.job };
    const dispatch = dispatchOf(state);
    const job = new Job(this.deps.store, ref, operationOf({ job: ref, operation: step.operation }), dispatch.maxEntitiesPerSecond);
    let result: SliceResult;
    try {
      result = await job.slice(payload.shard, { budgetMs: dispatch.sliceBudgetMs, migration: payload.migration, slice: payload.slice });
    } catch (error) {
      // A shard the job does not have: a task we never sent. Refused without touching the run.
      if (isDsMigrateError(error, 'BAD_INPUT') && error.context.shard === payload.shard && error.context.job === ref.id) throw new MalformedPayloadError(errorMessage(error));
      throw error;
    }
    const { done, state: shard } = result;
    // The checkpoint names the shard's next slice, and only a slice that was next sends the one after it.
    const next = { ...payload, slice: payload.slice + 1 };
    if (result.skipped) {
      // A redelivery of the slice just before the next one, which may have stopped between recording its
      // successor and sending it: sent again, under the same name, so that the shard goes on either way.
      if (!done && shard.slices === next.slice) await this.dispatcher(state).enqueue(next);
      return { result: 'stale', detail: `shard ${payload.shard} is at slice ${shard.slices}, not ${payload.slice}` };
    }
    if (!done) {
      if (shard.slices === next.slice) await this.dispatcher(state).enqueue(next);
      return { result: 'done', detail: `shard ${payload.shard} slice ${payload.slice} done, continues` };
    }
    const moved = await this.completeIfDone(run, `slice/${payload.shard}/${payload.slice}`);
    return { result: 'done', detail: `shard ${payload.shard} finished${moved ? `; ${payload.migration} step ${payload.step} complete` : ''}` };
  }

  // ---- transitions ----

  /**
   * Completes the run's current step once its job is laid out and finished (as its shards' own
   * checkpoints say), or at once for a step with nothing to do or that ran in the task (`ran`: its counts). Several tasks may see that together:
   * a claim spares them contention on the run (src/executors/cloud-tasks/transition-claim.ts), and the
   * run's transition checks the step, so it happens once. Returns whether this call moved the run.
   */
  private async completeIfDone(run: Run, claimant: string, ran?: JobCounts): Promise<boolean> {
    const { store } = this.deps;
    const { state } = run;
    let counts: JobCounts = ran ?? zeroJobCounts();
    if (state.job !== null && !ran) {
      const totals = await jobTotals(store, { namespace: state.namespace, id: state.job });
      if (!totals?.complete) return false;
      counts = totals;
    }
    const key = transitionKey(state.namespace, state.id, state.current, state.step);
    if (!(await claim(store, key, claimant, CLAIM_STALE_MS))) {
      // Another task is moving the run. It may have moved it and failed after its commit applied, in a
      // delivery nobody retries (a duplicate): then what follows is ours to do. Or it is still at it, or
      // died: then this task is retried until the run has moved on or the claim is stale.
      const now = await Run.load(store, state.namespace, state.id, this.resolve);
      if (!now || !isCurrentStep(now.state, state.migrations[state.current].id, state.step)) {
        if (now) await this.ensureFollowUp(now);
        return false;
      }
      throw new TransitionBusy(`Another task is completing ${state.migrations[state.current].id} step ${state.step} of run ${state.id}; retried until the run has moved on.`);
    }
    let moved: boolean;
    try {
      moved = await run.complete(counts);
    } finally {
      // Applied or not, the claim must not outlive this attempt: a delivery that is not retried would
      // otherwise keep every other task of the step from moving the run until it is stale.
      await releaseClaim(store, key).catch(() => undefined);
    }
    if (moved) this.deps.log?.(`run ${state.id}: ${state.migrations[state.current].id} step ${state.step} done`);
    // Moved or not (perhaps by an attempt of this very task whose commit answered with an error after
    // it was applied), whatever follows the transition must happen.
    await this.ensureFollowUp(run);
    return moved;
  }

  /** Enqueues the start of the run's current step if nothing has started it yet (its name dedupes); lets go of the lease of a run that ended. */
  private async ensureFollowUp(run: Run): Promise<void> {
    const { state } = run;
    if (state.status === 'running' && state.shards === null) await this.dispatcher(state).enqueue(Pipeline.startTask(state));
    if (state.status === 'done' || state.status === 'failed') await run.release();
  }

  /**
   * Sends the shards' first slices of this run: each shard from the slice its checkpoint names as its next
   * (0 for a fresh one), and none for a shard that is done. A run that took over a job (after `unlock`, or
   * a lapsed lease) thus continues each shard where the run before it handed it on; only that slice may run.
   */
  private async dispatchFirstSlices(run: RunState, layout: JobLayout, from: number, to: number): Promise<void> {
    const dispatcher = this.dispatcher(run);
    const limit = pLimit(DISPATCH_PARALLELISM);
    const migration = run.migrations[run.current].id;
    const shards = from < to ? (await loadShardStates(this.deps.store, layout)).slice(from, to) : [];
    await Promise.all(
      shards
        .filter((shard) => !shard.done)
        .map((shard) => limit(() => dispatcher.enqueue({ v: 2, type: 'slice', ns: run.namespace, run: run.id, migration, step: run.step, shard: shard.index, slice: shard.slices ?? 0 }))),
    );
  }
}

/** Another task holds the step's transition claim: retried, and no cause for concern (nothing the run waits on). */
class TransitionBusy extends DsMigrateError {
  constructor(message: string) {
    super('CLOUD_TASKS', message);
  }
}

/** A task naming a migration or step the run does not have was never sent by us: refused, the run untouched. */
function checkNames(run: RunState, payload: TaskPayload): void {
  const planned = run.migrations.find((m) => m.id === payload.migration);
  if (!planned) throw new MalformedPayloadError(`run ${run.id} has no migration ${payload.migration}`);
  if (payload.step >= Math.max(1, planned.steps.length))
    throw new MalformedPayloadError(`migration ${payload.migration} has ${planned.steps.length} step(s) in run ${run.id}, not a step ${payload.step}`);
}
