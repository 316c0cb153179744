import pLimit from 'p-limit';
import type { Datastore } from '../datastore';
import { CloudTasksExecutor, type PlanPayload, type SlicePayload, type TaskPayload, type TasksApi } from '../executors/cloud-tasks';
import { DsMigrateError, errorMessage, type ErrorCode } from '../errors';
import { operationRunId, Recorder, type MigrationGraph, type MigrationRecord } from '../migrations';
import { advance, countsOf } from './advance';
import type { OperationTotals, PlanView, ShardEngine } from './engine';
import { RunLease } from './lease';
import { stepFor, type MigrationStep } from './operations';
import { currentMigration, encodeRunState, isCurrentStep, loadRun, type RunState } from './run-state';
import { claim, claimKey, releaseClaim } from './transition-claim';

export interface PipelineDeps {
  store: Datastore;
  /** The migrations as this process loaded them from its files. */
  graph: MigrationGraph;
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

/** Errors that another attempt cannot fix: the migration fails and its tasks stop. Everything else is retried. */
const PERMANENT: readonly ErrorCode[] = ['OPERATION_FAILED', 'TYPE_MISMATCH', 'BAD_INPUT', 'UNKNOWN_KIND', 'MODEL_DEFINITION', 'CONFLICT', 'MIGRATION_FAILED'];

export function isPermanent(error: unknown): boolean {
  return error instanceof DsMigrateError && PERMANENT.includes(error.code);
}

const PROGRESS_EVERY_MS = 2000;
const DISPATCH_PARALLELISM = 16;

/**
 * Moves runs forward, one task at a time. Each task names a step (plan an operation, run a slice of
 * a shard); the run's state in Datastore says which step is current, so a task for any other step is
 * acknowledged without effect. A task that finishes a shard checks the shards' checkpoints; when all
 * are done, one transaction checks that the run is still at this operation, records the operation
 * (and the migration, if it was the last one) and moves the run on: whatever the deliveries, each
 * transition happens once. What follows a transition (enqueuing the next step) is repeated by any
 * later task of the run that finds it missing, so a crash in between loses nothing.
 */
export class Pipeline {
  private readonly progressSavedAt = new Map<string, number>();

  constructor(private readonly deps: PipelineDeps) {}

  async run(payload: TaskPayload): Promise<StepOutcome> {
    const run = await loadRun(this.deps.store, payload.ns, payload.run);
    if (!run) return { result: 'stale', detail: `no run ${payload.run} in namespace "${payload.ns}"` };
    if (!isCurrentStep(run, payload.migration, payload.op)) {
      await this.ensureFollowUp(run);
      return { result: 'stale', detail: `run ${run.id} is ${run.status === 'running' ? `at ${currentMigration(run)?.id} operation ${run.op}` : run.status}` };
    }
    // Checked on every task, so that `dsmigrate unlock` or a run that took over stops this one at once.
    if ((await this.lease(run).keep()) === 'lost') {
      await this.abandon(run);
      return { result: 'stale', detail: `run ${run.id} lost the migration lock and stopped` };
    }
    try {
      return payload.type === 'plan' ? await this.plan(run, payload) : await this.slice(run, payload);
    } catch (error) {
      if (!isPermanent(error)) throw error;
      await this.fail(run, error);
      return { result: 'failed', detail: errorMessage(error) };
    }
  }

  /**
   * Starts the run's current migration: its record becomes `running`, fresh or resumed where an
   * earlier attempt stopped. Once per migration per run, in one transaction with the run's state.
   */
  async beginMigration(runRef: Pick<RunState, 'namespace' | 'id'>): Promise<RunState | undefined> {
    return this.deps.store.transaction(async (tx) => {
      const run = await loadRun(tx, runRef.namespace, runRef.id);
      if (!run || run.status !== 'running' || run.started >= run.current) return run;
      const planned = currentMigration(run)!;
      const { migration: m, operations } = stepFor(this.deps.graph, planned, run.direction);
      const recorder = new Recorder(tx, run.namespace);
      const existing = await recorder.get(m.id);
      const resumable = planned.resume && existing !== undefined && (existing.state === 'running' || existing.state === 'failed') && existing.direction === run.direction;
      const record: MigrationRecord = resumable
        ? { ...existing, state: 'running', error: undefined, finishedAt: undefined, checksum: m.checksum }
        : { ...Recorder.fresh(m.id, m.app, m.name, m.checksum, operations), direction: run.direction };
      await recorder.save(record);
      const begun: RunState = { ...run, started: run.current, op: resumable ? existing.operationsDone : 0, shards: null };
      tx.upsert(encodeRunState(begun));
      return begun;
    });
  }

  /** The executor that sends this run's tasks, as the run was configured. */
  dispatcher(run: RunState): CloudTasksExecutor {
    const { dispatch } = run;
    if (dispatch.auth.kind === 'hmac' && !this.deps.secret) {
      throw new DsMigrateError('CLOUD_TASKS', `Run ${run.id} signs its tasks with a shared secret, and this process has none: set DSMIGRATE_WORKER_SECRET.`);
    }
    const auth = dispatch.auth.kind === 'hmac' ? { kind: 'hmac' as const, secret: this.deps.secret! } : dispatch.auth;
    return new CloudTasksExecutor(this.deps.tasks, { queue: dispatch.queue, url: dispatch.url, auth, dispatchDeadlineMs: dispatch.dispatchDeadlineMs });
  }

  /** The task that plans the run's current operation. */
  static planTask(run: RunState, page = 0): PlanPayload {
    return { v: 1, type: 'plan', ns: run.namespace, run: run.id, migration: currentMigration(run)!.id, op: run.op, page };
  }

  // ---- steps ----

  private async plan(run: RunState, payload: PlanPayload): Promise<StepOutcome> {
    if (run.started < run.current) {
      const begun = await this.beginMigration(run);
      if (!begun || !isCurrentStep(begun, payload.migration, payload.op)) {
        if (begun) await this.ensureFollowUp(begun);
        return { result: 'done', detail: `started ${payload.migration}; it resumes at operation ${begun?.op}` };
      }
      run = begun;
    }
    const step = stepFor(this.deps.graph, currentMigration(run)!, run.direction);
    const claimant = `plan/${payload.page}`;
    if (run.op >= step.operations.length) {
      await this.completeIfDone(run, step, claimant);
      return { result: 'done', detail: `${payload.migration} has no operation left` };
    }
    const { engine, store } = this.deps;
    const operation = step.operations[run.op];
    const runId = this.operationRunId(run);
    const started = Date.now();
    let known = run.shards ?? 0;
    let view: PlanView = await engine.ensurePlan(store, operation, runId);
    // Shards are dispatched as soon as they are cut, and before they are recorded in the run: a crash
    // in between dispatches them again, and their names dedupe.
    for (;;) {
      await this.dispatchFirstSlices(run, known, view.shards);
      known = view.shards;
      if (!view.pending || Date.now() - started >= run.dispatch.sliceBudgetMs) break;
      view = await engine.extendPlan(store, operation, runId);
    }
    const current = await this.recordShards(run, view.shards);
    if (!current) return { result: 'stale', detail: `run ${run.id} moved on while ${payload.migration}#${payload.op} was planned` };
    if (view.pending) await this.dispatcher(run).enqueue({ ...payload, page: payload.page + 1 });
    // All shards may be done already (none at all, or fast ones while later pages were cut).
    else await this.completeIfDone(current, step, claimant);
    return { result: 'done', detail: `${view.shards} shard(s) planned${view.pending ? ', more to cut' : ''}` };
  }

  private async slice(run: RunState, payload: SlicePayload): Promise<StepOutcome> {
    if (run.started < run.current) return { result: 'stale', detail: `${payload.migration} has not started` };
    const step = stepFor(this.deps.graph, currentMigration(run)!, run.direction);
    const { done } = await this.deps.engine.runSlice({
      store: this.deps.store,
      operation: step.operations[run.op],
      runId: this.operationRunId(run),
      shard: payload.shard,
      budgetMs: run.dispatch.sliceBudgetMs,
      migration: payload.migration,
    });
    if (!done) {
      await this.dispatcher(run).enqueue({ ...payload, slice: payload.slice + 1 });
      await this.saveProgress(run);
      return { result: 'done', detail: `shard ${payload.shard} slice ${payload.slice} done, continues` };
    }
    const moved = await this.completeIfDone(run, step, `slice/${payload.shard}/${payload.slice}`);
    return { result: 'done', detail: `shard ${payload.shard} finished${moved ? `; ${payload.migration} operation ${payload.op} complete` : ''}` };
  }

  // ---- transitions ----

  /** Notes how many shards the current operation has so far (only ever more). Undefined if the run moved on. */
  private async recordShards(run: RunState, shards: number): Promise<RunState | undefined> {
    const migrationId = currentMigration(run)!.id;
    return this.deps.store.transaction(async (tx) => {
      const fresh = await loadRun(tx, run.namespace, run.id);
      if (!fresh || !isCurrentStep(fresh, migrationId, run.op)) return undefined;
      if (fresh.shards !== null && fresh.shards >= shards) return fresh;
      const updated: RunState = { ...fresh, shards };
      tx.upsert(encodeRunState(updated));
      return updated;
    });
  }

  /**
   * Moves the run past its current operation once every shard of it is planned and finished (as the
   * shards' own checkpoints say): the operation is recorded in the migration's record and the run
   * goes to the next operation, or past the migration (recorded applied, or removed when unapplying),
   * all in one transaction that first checks the run is still at this step, so it happens once.
   * Returns whether this call moved the run.
   */
  private async completeIfDone(run: RunState, step: MigrationStep, claimant: string): Promise<boolean> {
    const { store, engine } = this.deps;
    const migrationId = currentMigration(run)!.id;
    const op = run.op;
    let totals: OperationTotals | undefined;
    if (op < step.operations.length) {
      totals = await engine.totals(store, this.operationRunId(run));
      if (!totals?.complete) return false;
    }
    const key = claimKey(run.namespace, run.id, run.current, op);
    if (!(await claim(store, key, claimant))) return false;
    const advanced = await store.transaction(async (tx) => {
      const fresh = await loadRun(tx, run.namespace, run.id);
      if (!fresh || !isCurrentStep(fresh, migrationId, op)) return undefined;
      await advance(fresh, step, new Recorder(tx, fresh.namespace), totals);
      tx.upsert(encodeRunState(fresh));
      return fresh;
    });
    await releaseClaim(store, key);
    if (advanced) await this.afterAdvance(run, step, advanced);
    return advanced !== undefined;
  }

  /** What follows a transition; also repeated by later tasks of the run (ensureFollowUp) if it was lost. */
  private async afterAdvance(before: RunState, step: MigrationStep, after: RunState): Promise<void> {
    const finished = after.current !== before.current;
    this.deps.log?.(`run ${after.id}: ${step.migration.id} operation ${before.op} done${finished ? `; migration ${before.direction === 'forward' ? 'applied' : 'unapplied'}` : ''}`);
    if (before.op < step.operations.length) {
      const done = operationRunId(step.migration.id, before.op, before.direction);
      await this.deps.engine.finish(this.deps.store, done).catch((error) => this.deps.log?.(`could not tidy up after ${done}: ${errorMessage(error)}`));
    }
    if (finished && before.direction === 'reverse') {
      // As the local runner does: once unapplied, neither direction's shard state means anything.
      for (let i = 0; i < step.operations.length; i++) {
        for (const direction of ['reverse', 'forward'] as const) {
          await this.deps.engine.clear(this.deps.store, operationRunId(step.migration.id, i, direction)).catch((error) => this.deps.log?.(`could not clear state of ${step.migration.id}#${i}: ${errorMessage(error)}`));
        }
      }
    }
    await this.ensureFollowUp(after);
  }

  /** Enqueues the run's current step if nothing has planned it yet; releases the lock of a run that ended. */
  private async ensureFollowUp(run: RunState): Promise<void> {
    if (run.status === 'running' && run.shards === null) await this.dispatcher(run).enqueue(Pipeline.planTask(run));
    if (run.status === 'done' || run.status === 'failed') {
      await this.lease(run).release();
      this.forget(run);
    }
  }

  private async fail(run: RunState, error: unknown): Promise<void> {
    const message = errorMessage(error);
    this.deps.log?.(`run ${run.id}: ${currentMigration(run)?.id} failed: ${message}`);
    await this.deps.store.transaction(async (tx) => {
      const fresh = await loadRun(tx, run.namespace, run.id);
      if (!fresh || fresh.status !== 'running') return;
      const recorder = new Recorder(tx, fresh.namespace);
      const record = await recorder.get(currentMigration(fresh)!.id);
      if (record) await recorder.save({ ...record, state: 'failed', error: message, finishedAt: new Date() });
      tx.upsert(encodeRunState({ ...fresh, status: 'failed', error: message, finishedAt: new Date() }));
    });
    await this.lease(run).release();
    this.forget(run);
  }

  /** The lock was broken or taken: stop here. The migration's record stays `running`, for the next run to resume. */
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

  private operationRunId(run: RunState): string {
    return operationRunId(currentMigration(run)!.id, run.op, run.direction);
  }

  private lease(run: RunState): RunLease {
    return new RunLease(this.deps.store, run.namespace, run.id, run.leaseTtlMs);
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

  /** Copies the operation's counts into its record for `status`, every few seconds from each process. */
  private async saveProgress(run: RunState): Promise<void> {
    const key = `${run.id}/${run.current}/${run.op}`;
    if (Date.now() - (this.progressSavedAt.get(key) ?? 0) < PROGRESS_EVERY_MS) return;
    this.progressSavedAt.set(key, Date.now());
    const totals = await this.deps.engine.totals(this.deps.store, this.operationRunId(run));
    if (!totals) return;
    const migrationId = currentMigration(run)!.id;
    // In a transaction that reads the run: a late save can never overwrite a record moved on by a transition.
    await this.deps.store.transaction(async (tx) => {
      const fresh = await loadRun(tx, run.namespace, run.id);
      if (!fresh || !isCurrentStep(fresh, migrationId, run.op)) return;
      const recorder = new Recorder(tx, run.namespace);
      const record = await recorder.get(migrationId);
      if (!record || record.operationsDone !== run.op || !record.operations[run.op]) return;
      record.operations[run.op] = { ...record.operations[run.op], ...countsOf(totals), done: false };
      await recorder.save(record);
    });
  }
}
