import { jobRef, type JobRef } from '../control';
import type { Datastore, Transaction } from '../datastore';
import { DsMigrateError, errorMessage } from '../errors';
import { clearJobState, clearMigrationJobs, closeJob, pauseAt, scannedRanges, type KeyRange } from '../sharding';
import { isDataOperation } from '../operations';
import { Coverage } from './coverage';
import type { MigrationGraph } from './graph';
import type { Lease } from './lease';
import type { LoadedMigration } from './loader';
import { pendingPlan, type MigrationStep, type Plan, type PlanOptions } from './planning';
import { Recorder, type Direction, type JobCounts, type MigrationRecord, type OperationRecord } from './recorder';

/** What a step needs: nothing (already in effect everywhere, or nowhere going back), or a job over the whole scope or these ranges. */
export type StepStart = { skip: true } | { skip: false; job: JobRef; bounds?: KeyRange[] };

/**
 * A migration's life, the same for every executor and both directions: plan (under the lease),
 * begin, start each step's job, complete each step, finish; or fail. Every step that changes a
 * record runs in a transaction that first checks the lease, so a run that lost it writes nothing
 * more; the Cloud Tasks driver passes its own transaction to make a step one commit with its run's
 * state. The record says what ran (src/migrations/coverage.ts), so a back-out or a redo in the other
 * direction touches exactly that.
 */
export class Lifecycle {
  readonly namespace: string;

  constructor(
    readonly store: Datastore,
    readonly lease: Lease,
  ) {
    this.namespace = lease.namespace;
  }

  /** The plan, made from the records as they are once the lease is held; every operation validated. Writes nothing. */
  async prepare(graph: MigrationGraph, options: PlanOptions = {}): Promise<Plan> {
    // Side by side: the plan writes nothing, and a lost lease is the error whatever planning met.
    return (await this.lease.whileHeld(this.store, () => pendingPlan(this.store, graph, this.namespace, options))).plan;
  }

  /** Starts (or resumes) a migration in a direction, for a run to `target` (none: everything pending): its record becomes `running`. */
  async begin(m: LoadedMigration, direction: Direction, target: string | undefined, tx?: Transaction): Promise<{ record: MigrationRecord; resumed: boolean }> {
    return this.step(tx, async (recorder) => {
      const existing = await recorder.get(m.id);
      const record: MigrationRecord = existing
        ? { ...existing, state: 'running', error: undefined, errorCode: undefined, finishedAt: undefined, direction, target, checksum: m.checksum }
        : { ...Recorder.fresh(m.id, m.app, m.name, m.checksum, m.definition.operations, direction), target };
      await recorder.save(record);
      // Resuming means going on in the same direction; backing out an applied migration starts afresh.
      const resumed = existing !== undefined && (existing.state === 'running' || existing.state === 'failed') && existing.direction === direction;
      return { record, resumed };
    });
  }

  /**
   * Readies a step's job. A job of the other direction left by an interrupted run is closed first
   * and what it committed is folded into the operation's coverage; then the step needs a job only
   * over what is left to do in this direction. Repeatable: a crash anywhere here is resumed by the next call.
   */
  async startStep(m: LoadedMigration, step: MigrationStep, direction: Direction): Promise<StepStart> {
    await pauseAt('step-start');
    const i = step.index;
    let op = await this.operationRecord(m, i);
    // A RunFunction's coverage is all or none: it has no key ranges.
    const namespaces = isDataOperation(step.operation) ? await step.operation.namespaces(this.store) : [];
    if (op.job && op.job.direction !== direction) {
      const stale = op.job;
      const job = jobRef(this.namespace, m.id, i, stale.seq);
      // Each shard is closed in a transaction that checks the lease: a run that lost it closes nothing of the holder's.
      // In the operation's terms: a job that restored before-images committed ranges of their keys.
      const committed = scannedRanges(await closeJob(this.store, job, this.fence));
      op = await this.updateOperation(m, i, (o) => {
        if (o.job?.seq !== stale.seq) return;
        // A RunFunction keeps no checkpoints: once started in a direction, it may have done all of it.
        o.applied = isDataOperation(step.operation) ? o.applied.fold(stale.direction, committed, namespaces) : stale.direction === 'forward' ? Coverage.all() : Coverage.none();
        o.job = undefined;
      });
      await clearJobState(this.store, job, this.fence);
    }
    // Declared `reverse: 'noop'`: nothing to run; completing the step records the operation undone.
    if (step.noop) return { skip: true };
    const todo = op.applied.todo(direction, namespaces);
    if (todo && todo.length === 0) return { skip: true };
    if (!op.job) {
      op = await this.updateOperation(m, i, (o) => {
        o.job ??= { seq: o.nextSeq++, direction };
      });
    }
    const job = jobRef(this.namespace, m.id, i, op.job!.seq);
    if (!isDataOperation(step.operation)) return { skip: false, job, bounds: todo };
    await step.operation.beforeJob(this.store, job);
    const bounds = step.operation.jobBounds(todo, namespaces, job);
    return { skip: false, job, bounds: bounds && [...bounds] };
  }

  /** The step is done: the operation is in effect everywhere (forward) or nowhere (reverse). */
  async completeStep(m: LoadedMigration, step: MigrationStep, direction: Direction, counts: JobCounts | undefined, tx?: Transaction): Promise<void> {
    await this.step(tx, async (recorder) => {
      const record = await this.requireRecord(recorder, m);
      const op = record.operations[step.index];
      op.applied = direction === 'forward' ? Coverage.all() : Coverage.none();
      op.job = undefined;
      if (counts) Object.assign(op, counts);
      await recorder.save(record);
    });
  }

  /** Every step done: the migration is `applied`, or, going back, its record is gone. Call `tidy` after. */
  async finish(m: LoadedMigration, direction: Direction, tx?: Transaction): Promise<void> {
    await this.step(tx, async (recorder) => {
      const record = await this.requireRecord(recorder, m);
      if (direction === 'reverse') await recorder.remove(m.id);
      else await recorder.save({ ...record, state: 'applied', finishedAt: new Date(), error: undefined, errorCode: undefined });
    });
  }

  /**
   * Drops the job state of a finished or restarted migration (only running it needed it). `whileDeleting`
   * runs once the jobs are marked cleared, alongside the deletes, which need the lease no more.
   */
  async tidy(m: LoadedMigration, whileDeleting?: () => Promise<void>): Promise<void> {
    await clearMigrationJobs(this.store, this.namespace, m.id, this.fence, whileDeleting);
  }

  /** The migration failed: recorded with the error and its code, its coverage kept, so a re-run resumes and a back-out undoes exactly what ran. */
  async fail(m: Pick<LoadedMigration, 'id'>, error: unknown, errorCode: string, tx?: Transaction): Promise<void> {
    await this.step(tx, async (recorder) => {
      const record = await recorder.get(m.id);
      if (record) await recorder.save({ ...record, state: 'failed', error: errorMessage(error).slice(0, 1500), errorCode, finishedAt: new Date() });
    });
  }

  /** `--fake`: recorded as applied (or unapplied) without running anything. */
  async fake(m: LoadedMigration, direction: Direction): Promise<void> {
    await this.step(undefined, async (recorder) => {
      if (direction === 'reverse') return recorder.remove(m.id);
      const record = Recorder.fresh(m.id, m.app, m.name, m.checksum, m.definition.operations, 'forward');
      for (const op of record.operations) op.applied = Coverage.all();
      await recorder.save({ ...record, state: 'faked', finishedAt: new Date() });
    });
    await this.tidy(m);
  }

  /**
   * `--restart`: forgets a failed (or interrupted) migration so that its fixed file runs from the
   * start. What it already changed stays changed; the fixed migration must be safe over that.
   */
  async restart(m: LoadedMigration): Promise<MigrationRecord | undefined> {
    const record = await this.step(undefined, async (recorder) => {
      const existing = await recorder.get(m.id);
      if (existing && (existing.state === 'applied' || existing.state === 'faked')) {
        throw new DsMigrateError('BAD_INPUT', `${m.id} is ${existing.state}, not failed: there is nothing to restart. To run it again, unapply it first (\`dsmigrate migrate <previous>\`).`, {
          migration: m.id,
        });
      }
      if (existing) await recorder.remove(m.id);
      return existing;
    });
    await this.tidy(m);
    return record;
  }

  private async operationRecord(m: LoadedMigration, index: number): Promise<OperationRecord> {
    const record = await this.requireRecord(new Recorder(this.store, this.namespace), m);
    return record.operations[index];
  }

  private async updateOperation(m: LoadedMigration, index: number, change: (op: OperationRecord) => void): Promise<OperationRecord> {
    return this.step(undefined, async (recorder) => {
      const record = await this.requireRecord(recorder, m);
      change(record.operations[index]);
      await recorder.save(record);
      return record.operations[index];
    });
  }

  private async requireRecord(recorder: Recorder, m: LoadedMigration): Promise<MigrationRecord> {
    const record = await recorder.get(m.id);
    if (!record) throw new DsMigrateError('CONFLICT', `The record of ${m.id} disappeared while it ran (was it restarted or unapplied by another run?).`, { migration: m.id });
    return record;
  }

  /** Checks, inside a transaction of the sharding layer, that this run still holds the lease. */
  private readonly fence = (tx: Transaction): Promise<void> => this.lease.assertHeld(tx);

  /** One lifecycle step: in the caller's transaction or a new one, after checking that the lease is still ours. */
  private step<T>(tx: Transaction | undefined, body: (recorder: Recorder) => Promise<T>): Promise<T> {
    const run = (t: Transaction) => this.lease.whileHeld(t, () => body(new Recorder(t, this.namespace)));
    return tx ? run(tx) : this.store.transaction(run);
  }
}
