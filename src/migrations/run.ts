import { randomBytes } from 'node:crypto';
import { leaseKey, migrationKey, runKey, type JobRef } from '../control';
import type { Datastore, Transaction } from '../datastore';
import { DsMigrateError, errorMessage, isDsMigrateError, type ErrorCode } from '../errors';
import type { UndoConflicts } from '../operations';
import { pauseAt, zeroJobCounts, type KeyRange } from '../sharding';
import type { OperationProgress, OperationResult } from './executor';
import { resolveTarget, type MigrationGraph, type MigrationResolver } from './graph';
import { Lease, processOwner, runOwner } from './lease';
import { Lifecycle } from './lifecycle';
import type { LoadedMigration } from './loader';
import { emptyScopes, refuseEmptyScopes } from './empty-scopes';
import { describeStep, stepOf, type MigrationStep, type Plan } from './planning';
import type { Direction, JobCounts, MigrationState } from './recorder';
import { currentMigration, encodeRunState, loadRun, newRunId, recentRuns, type RunDriver, type RunState } from './run-state';

/**
 * What a run reports as it goes; a watcher (src/migrations/follow.ts) tells the same story from the stored
 * run. A later version may add types: pass over those you do not know rather than failing on them.
 */
export type RunEvent =
  | { type: 'plan'; direction: Direction; migrations: string[]; /** What is done with them, when not applying or backing out. */ purpose?: 'dry-run' | 'verify' }
  | { type: 'migration-start'; migration: string; index: number; total: number; resumed: boolean }
  | { type: 'operation-start'; migration: string; operation: number; operations: number; description: string }
  | { type: 'progress'; migration: string; operation: number; progress: OperationProgress }
  | { type: 'operation-done'; migration: string; operation: number; result: OperationResult }
  | { type: 'migration-done'; migration: string; state: MigrationState | 'unapplied' }
  | { type: 'migration-failed'; migration: string; error: string }
  | { type: 'waiting'; migration: string; operation: number; reason: string; attempts: number }
  /** Every shard of the step is done and the step is not yet recorded complete: who records it (told by a watcher). */
  | { type: 'closing'; migration: string; operation: number; reason: string }
  /** A line a RunFunction step logged. */
  | { type: 'log'; migration: string; operation: number; message: string }
  | { type: 'dry-run'; migration: string; operation: number; description: string; result: OperationResult };

/** A step ready to run: its job covers the whole scope, or only `bounds` (what another job committed). */
export interface ReadyStep {
  migration: LoadedMigration;
  step: MigrationStep;
  /** Its position among the migration's steps in this run. */
  position: number;
  job: JobRef;
  bounds?: KeyRange[];
}

/** What an operator asks of a run, the same for `migrate` in either driver. */
export interface RunRequest {
  /** Stop at this migration (`name`, its number, or `app:name`); an applied target unapplies what came after it; `zero` unapplies all. */
  target?: string;
  allowChanged?: boolean;
  /** Forget these failed migrations' state first, so that their fixed files run from the start. */
  restart?: readonly string[];
  /** `--strict`: a step whose kind has no entities is refused before the run is stored (src/migrations/empty-scopes.ts). */
  strict?: boolean;
  /** Wait this long for another run's lease (else LEASE_HELD). */
  lockWaitMs?: number;
  /** What a back-out from before-images does with entities changed since (`--undo-conflicts`, default `refuse`); stored with the run. */
  undoConflicts?: UndoConflicts;
  onEvent?: (event: RunEvent) => void;
}

export interface OpenRunOptions extends RunRequest {
  store: Datastore;
  graph: MigrationGraph;
  namespace: string;
  driver: RunDriver;
  leaseTtlMs: number;
  command: string;
  /** `--fake`: the plan needs no reverse, check or consistent history (src/migrations/planning.ts). */
  fake?: boolean;
  /** The driver's own settings, stored with the run (Cloud Tasks: where its tasks go). */
  settings?: string;
  /** Called with the plan once it is made and accepted, before the run is stored: the local driver starts its first job's reads then. */
  onPlan?: (plan: Plan) => void;
}

export interface OpenedRun {
  /** Undefined when nothing was pending (the lease is released again). */
  run?: Run;
  plan: Plan;
  restarted: string[];
}

/** What a step's error means for its run (Run.settle). */
export type Settlement = 'stale' | 'retry' | 'failed';

/**
 * Errors that another attempt cannot fix. Everything else may be retried, where the driver retries:
 * MIGRATION_LOAD too (a worker without the run's migration file, or with another version of it), since
 * a rolling deploy fixes that by itself.
 */
const PERMANENT: readonly ErrorCode[] = ['OPERATION_FAILED', 'TYPE_MISMATCH', 'BAD_INPUT', 'UNKNOWN_KIND', 'MODEL_DEFINITION', 'CONFLICT', 'MIGRATION_FAILED'];
/** Another run holds the lease, or closed or cleared this job: the step has nothing left to do here, and writes nothing. */
const STALE: readonly ErrorCode[] = ['LEASE_LOST', 'JOB_CLOSED', 'JOB_CLEARED'];

/** Ended runs kept for `status`. */
const RUNS_KEPT = 20;

/**
 * A run: one `migrate` holding the lease of a control namespace, persisted as one entity
 * (src/migrations/run-state.ts) with one state machine for both drivers. Open (lease, restarts, plan
 * under the lease), begin a migration, start a step, complete it, fail; the local driver loops over
 * `next()`, the Cloud Tasks driver takes one transition per task. Every transition is one transaction
 * that checks the lease and that the run is still where this process saw it, so a late or duplicate
 * actor changes nothing, and a run that lost its lease writes nothing more. The lifecycle
 * (src/migrations/lifecycle.ts) changes the migrations' records inside those transactions.
 */
export class Run {
  private readonly resolved = new Map<number, { migration: LoadedMigration; steps: MigrationStep[] }>();

  private constructor(
    readonly store: Datastore,
    private readonly lease: Lease,
    private readonly lifecycle: Lifecycle,
    private stored: RunState,
    private readonly resolve: MigrationResolver,
    private readonly emit: (event: RunEvent) => void,
  ) {}

  get state(): RunState {
    return this.stored;
  }

  /**
   * Takes the lease, forgets the migrations to restart, plans under the lease and stores the new run.
   * Runs of this namespace still marked running lost the lease to this one: they are marked abandoned.
   */
  static async open(o: OpenRunOptions): Promise<OpenedRun> {
    const emit = o.onEvent ?? (() => undefined);
    const id = newRunId();
    const lease = new Lease(o.store, o.namespace, o.driver === 'cloud-tasks' ? runOwner(id) : processOwner(), o.leaseTtlMs);
    await lease.acquire(o.command, o.lockWaitMs);
    try {
      const lifecycle = new Lifecycle(o.store, lease);
      const restarted: string[] = [];
      for (const name of o.restart ?? []) {
        const m = resolveTarget(o.graph, name);
        await lifecycle.restart(m);
        restarted.push(m.id);
      }
      const plan = await lifecycle.prepare(o.graph, o);
      emit({ type: 'plan', direction: plan.direction, migrations: plan.migrations.map((p) => p.migration.id) });
      if (plan.migrations.length === 0) {
        await lease.release();
        return { plan, restarted };
      }
      if (o.strict && !o.fake) refuseEmptyScopes(await emptyScopes(o.store, plan));
      o.onPlan?.(plan);
      await supersede(o.store, lease, id);
      const state: RunState = {
        id,
        namespace: o.namespace,
        driver: o.driver,
        owner: lease.owner,
        status: 'running',
        direction: plan.direction,
        target: plan.target,
        migrations: plan.migrations.map(({ migration, steps }) => ({
          id: migration.id,
          checksum: migration.checksum,
          steps: steps.map((s) => s.index),
          descriptions: steps.map(describeStep),
          counts: steps.map(() => null),
        })),
        current: 0,
        step: 0,
        started: -1,
        job: null,
        stepStartedAt: null,
        shards: null,
        page: 0,
        settings: o.settings ?? null,
        undoConflicts: o.undoConflicts ?? 'refuse',
        leaseTtlMs: o.leaseTtlMs,
        command: o.command,
        createdAt: new Date(),
      };
      await o.store.transaction(async (tx) => {
        await lease.assertHeld(tx);
        tx.upsert(encodeRunState(state));
      });
      const run = new Run(o.store, lease, lifecycle, state, resolverFor(plan), emit);
      return { run, plan, restarted };
    } catch (error) {
      await lease.release().catch(() => undefined);
      throw error;
    }
  }

  /** A stored run, for a process that carries it on (a Cloud Tasks task); undefined if there is none. */
  static async load(store: Datastore, namespace: string, id: string, resolve: MigrationResolver, emit: (event: RunEvent) => void = () => undefined): Promise<Run | undefined> {
    const state = await loadRun(store, namespace, id);
    if (!state) return undefined;
    const lease = new Lease(store, namespace, state.owner, state.leaseTtlMs);
    return new Run(store, lease, new Lifecycle(store, lease), state, resolve, emit);
  }

  /**
   * The current migration as this process resolves it, with the steps the run planned. A process with
   * another version of the file than the run was planned with refuses rather than run other code.
   */
  async current(): Promise<{ migration: LoadedMigration; steps: MigrationStep[] }> {
    const index = this.stored.current;
    const cached = this.resolved.get(index);
    if (cached) return cached;
    const migration = await this.currentMigration();
    const planned = this.stored.migrations[index];
    const operations = migration.definition.operations;
    const steps = planned.steps.map((i) => {
      const operation = operations[i];
      if (!operation) throw new DsMigrateError('MIGRATION_LOAD', `${migration.file} has no operation ${i}, which the run planned.`, { migration: planned.id, file: migration.file });
      return stepOf(operation, i, this.stored.direction, this.stored.undoConflicts);
    });
    const found = { migration, steps };
    this.resolved.set(index, found);
    return found;
  }

  /** The current migration's file, checked against the run's checksum (all a faked run needs of it). */
  private async currentMigration(): Promise<LoadedMigration> {
    const planned = currentMigration(this.stored);
    if (!planned) throw new DsMigrateError('BAD_INPUT', `Run ${this.stored.id} has no migration left.`);
    const migration = await this.resolve(planned.id);
    if (!migration) {
      throw new DsMigrateError(
        'MIGRATION_LOAD',
        `Migration ${planned.id} is not among this process's migration files: deploy the worker with the run's migrations, or restart it if it runs from a checkout that has them.`,
        { migration: planned.id },
      );
    }
    if (migration.checksum !== planned.checksum) {
      throw new DsMigrateError(
        'MIGRATION_LOAD',
        `${migration.file} differs from the version the run was planned with (checksum ${migration.checksum}, run has ${planned.checksum}): deploy the worker with the run's migrations.`,
        { migration: planned.id, file: migration.file },
      );
    }
    return migration;
  }

  /** The local driver's loop: the next step with work to do, after beginning migrations and completing steps with none; undefined once the run ended. */
  async next(): Promise<ReadyStep | undefined> {
    for (;;) {
      if (this.stored.status !== 'running') return undefined;
      await this.begin();
      const { migration, steps } = await this.current();
      const position = this.stored.step;
      const step = steps[position];
      if (step) this.emit({ type: 'operation-start', migration: migration.id, operation: position, operations: steps.length, description: describeStep(step) });
      const ready = step && (await this.startStep());
      if (ready) return ready;
      await this.complete(zeroJobCounts());
    }
  }

  /** Begins the current migration (its record becomes `running`), once per migration. */
  async begin(): Promise<void> {
    if (this.stored.started >= this.stored.current) return;
    const { migration } = await this.current();
    let resumed = false;
    const moved = await this.transition(
      'step',
      async (fresh, tx) => {
        if (fresh.started >= fresh.current) return undefined;
        ({ resumed } = await this.lifecycle.begin(migration, fresh.direction, fresh.target, tx));
        return { ...fresh, started: fresh.current, step: 0, job: null, shards: null, page: 0, stepStartedAt: null };
      },
      { readsRecord: true },
    );
    if (moved) this.emit({ type: 'migration-start', migration: migration.id, index: this.stored.current, total: this.stored.migrations.length, resumed });
  }

  /** Readies the current step's job (src/migrations/lifecycle.ts startStep); undefined when it has nothing to do in this direction. */
  async startStep(): Promise<ReadyStep | undefined> {
    const { migration, steps } = await this.current();
    const position = this.stored.step;
    const step = steps[position];
    if (!step) return undefined;
    const start = await this.lifecycle.startStep(migration, step, this.stored.direction);
    if (start.skip) return undefined;
    await this.transition('step', async (fresh) => (fresh.job === start.job.id ? undefined : { ...fresh, job: start.job.id, stepStartedAt: new Date(), waiting: undefined }));
    return { migration, step, position, job: start.job, bounds: start.bounds };
  }

  /**
   * The current step is done: recorded complete with its counts, and the run moves on (the migration
   * finishes after its last step, the run after its last migration). Returns whether this call moved
   * the run; false when another actor already had.
   */
  async complete(result: JobCounts & { warnings?: string[] }): Promise<boolean> {
    const { migration, steps } = await this.current();
    const position = this.stored.step;
    const step = steps[position];
    const counts = pickCounts(result);
    await pauseAt('step-complete');
    let finished = false;
    const moved = await this.transition(
      'step',
      async (fresh, tx) => {
        if (step) await this.lifecycle.completeStep(migration, step, fresh.direction, counts, tx);
        const migrations = fresh.migrations.map((m, i) => (i === fresh.current ? { ...m, counts: m.counts.map((c, p) => (p === position ? counts : c)) } : m));
        const next: RunState = { ...fresh, migrations, step: fresh.step + 1, job: null, shards: null, page: 0, stepStartedAt: null, waiting: undefined };
        if (next.step < steps.length) return next;
        await this.lifecycle.finish(migration, fresh.direction, tx);
        finished = true;
        const current = fresh.current + 1;
        return { ...next, current, step: 0, ...(current >= fresh.migrations.length ? { status: 'done' as const, finishedAt: new Date() } : {}) };
      },
      { readsRecord: true },
    );
    if (!moved) return false;
    if (step) this.emit({ type: 'operation-done', migration: migration.id, operation: position, result: { ...counts, warnings: result.warnings ?? [] } });
    if (finished) {
      this.emit({ type: 'migration-done', migration: migration.id, state: this.stored.direction === 'forward' ? 'applied' : 'unapplied' });
      // Only running it needed its jobs' state; a crash before this leaves state that nothing reads. The run's
      // last migration lets go of the lease while the state is deleted.
      const done = this.stored.status === 'done';
      await this.lifecycle.tidy(migration, done ? () => this.lease.release() : undefined).catch(() => undefined);
    }
    // Again where tidying failed before it let go (a second release has nothing to do).
    if (this.stored.status === 'done') await this.lease.release();
    return true;
  }

  /**
   * Decides what a step's error means for the run, in one place for both drivers: another run's lease
   * or job (`stale`: nothing is written), a failure a further attempt may fix (`retry`: counted on the
   * run, which notes what it waits on; only a driver that retries passes `maxAttempts` above 1), or the
   * run's failure (`failed`: recorded, with STEP_ATTEMPTS_SPENT once the step failed `maxAttempts` times).
   */
  async settle(error: unknown, maxAttempts = 1): Promise<Settlement> {
    if (isDsMigrateError(error) && STALE.includes(error.code)) return 'stale';
    if ((isDsMigrateError(error) && PERMANENT.includes(error.code)) || maxAttempts === 1) {
      await this.fail(error);
      return 'failed';
    }
    const attempts = await this.waitOn(`the step failed, retried (at most ${maxAttempts} attempts, cloudTasks.maxStepAttempts): ${errorMessage(error)}`, maxAttempts);
    if (attempts < maxAttempts) return 'retry';
    await this.fail(`${errorMessage(error)} (the step failed ${attempts} times; cloudTasks.maxStepAttempts is ${maxAttempts})`, 'STEP_ATTEMPTS_SPENT');
    return 'failed';
  }

  /** Keeps the lease renewed while this process drives the run (the local driver); the signal aborts once it is lost. */
  keepLease(): AbortSignal {
    return this.lease.keepRenewed();
  }

  /** Stops renewing the lease without letting go of it: a Cloud Tasks task that kept it renewed while it ran a long step. */
  stopKeepingLease(): void {
    this.lease.stopRenewing();
  }

  /** Whether the run still holds its lease, renewed when due: checked by each Cloud Tasks task before it writes. */
  async holdsLease(): Promise<boolean> {
    return (await this.lease.keep()) === 'held';
  }

  /** Lets go of the lease (stops renewing it); harmless when it is already gone or another's. */
  async release(): Promise<void> {
    await this.lease.release();
  }

  /**
   * Counts a failed attempt of the current step, and notes what the step waits on for watchers; returns
   * the step's failed attempts so far, or 0 when the run has left the step. The count is the run's own,
   * in the transaction that notes the failure: a count that came with the request (Cloud Tasks' retry
   * header) is covered by no signature, and a replayed request could claim any. One write per failed
   * delivery, and none once the count reaches `maxAttempts`: the caller fails the run then. The count
   * starts again when the step starts its job or completes.
   */
  async waitOn(reason: string, maxAttempts = Number.POSITIVE_INFINITY): Promise<number> {
    const seen = this.stored;
    let attempts = 0;
    await this.transition('step', async (fresh) => {
      attempts = (fresh.waiting?.attempts ?? 0) + 1;
      return attempts >= maxAttempts ? undefined : { ...fresh, waiting: { reason: reason.slice(0, 1500), attempts, since: fresh.waiting?.since ?? new Date() } };
    });
    // A count from a try of the transaction that found the run still at the step, before a retry found it moved on, is no count.
    const { status, current, step } = this.stored;
    return status === 'running' && current === seen.current && step === seen.step ? attempts : 0;
  }

  /** Notes how many shards of the step's job were handed out, and the next page to lay out (each only ever more). */
  async recordShards(shards: number, nextPage: number): Promise<boolean> {
    return this.transition('step', async (fresh) =>
      fresh.shards !== null && fresh.shards >= shards && fresh.page >= nextPage ? undefined : { ...fresh, shards: Math.max(fresh.shards ?? 0, shards), page: Math.max(fresh.page, nextPage) },
    );
  }

  /**
   * The run failed: its migration is recorded failed with the error (coverage kept, so a re-run resumes
   * and a back-out undoes exactly what ran), the run ends and lets go of the lease.
   */
  async fail(error: unknown, code?: ErrorCode): Promise<void> {
    const message = errorMessage(error).slice(0, 1500);
    const migration = currentMigration(this.stored);
    const errorCode = code ?? (isDsMigrateError(error) ? error.code : 'MIGRATION_FAILED');
    const moved = await this.transition(
      'running',
      async (fresh, tx) => {
        // By id only: a migration this process cannot resolve (not deployed) must still fail.
        if (migration && fresh.started >= fresh.current) await this.lifecycle.fail(migration, message, errorCode, tx);
        return { ...fresh, status: 'failed', error: message, errorCode, waiting: undefined, finishedAt: new Date() };
      },
      { readsRecord: true },
    );
    if (moved && migration) this.emit({ type: 'migration-failed', migration: migration.id, error: message });
    await this.lease.release();
  }

  /** `--fake`: every planned migration recorded applied (or unapplied) without running anything. */
  async fake(): Promise<void> {
    for (const planned of this.stored.migrations.slice(this.stored.current)) {
      await this.lifecycle.fake(await this.currentMigration(), this.stored.direction);
      await this.transition('step', async (fresh) => ({
        ...fresh,
        current: fresh.current + 1,
        step: 0,
        ...(fresh.current + 1 >= fresh.migrations.length ? { status: 'done' as const, finishedAt: new Date() } : {}),
      }));
      this.emit({ type: 'migration-done', migration: planned.id, state: this.stored.direction === 'forward' ? 'faked' : 'unapplied' });
    }
    await this.lease.release();
  }

  /** The migrations this run finished, for the caller's summary. */
  finished(): string[] {
    return this.stored.migrations.slice(0, this.stored.current).map((m) => m.id);
  }

  /**
   * One transition of the run: in a transaction that checks the lease and that the run is still
   * running (`'running'`), or still at the step this process saw (`'step'`). `change` returns the new
   * state, or undefined for none; `readsRecord` when it records on the current migration's record,
   * which is then read with the lease and the run. Returns whether the run changed.
   */
  private async transition(at: 'step' | 'running', change: (fresh: RunState, tx: Transaction) => Promise<RunState | undefined>, { readsRecord = false } = {}): Promise<boolean> {
    const seen = this.stored;
    const id = randomBytes(8).toString('hex');
    const record = readsRecord ? currentMigration(seen) : undefined;
    const outcome = await this.store.transaction(async (tx) => {
      // The lease, the run and (for a change the lifecycle records) the migration's record, in one round trip.
      const namespace = this.lease.namespace;
      tx.prefetch([leaseKey(namespace), runKey(seen.namespace, seen.id), ...(record ? [migrationKey(namespace, record.id)] : [])]);
      const fresh = await this.lease.whileHeld(tx, () => loadRun(tx, seen.namespace, seen.id));
      // The store runs this again after a commit whose outcome was unknown: finding its own id, the commit
      // landed and this call moved the run (what `change` set on that try stands), so it writes nothing more.
      if (fresh?.lastTransition === id) return { state: fresh, moved: true };
      if (!fresh || fresh.status !== 'running' || (at === 'step' && (fresh.current !== seen.current || fresh.step !== seen.step))) return { state: fresh, moved: false };
      const updated = await change(fresh, tx);
      if (!updated) return { state: fresh, moved: false };
      const written = { ...updated, lastTransition: id };
      tx.upsert(encodeRunState(written));
      return { state: written, moved: true };
    });
    if (outcome.state) this.stored = outcome.state;
    return outcome.moved;
  }
}

/** Resolves the planned migrations themselves: the process that planned them runs them. */
function resolverFor(plan: Plan): MigrationResolver {
  const byId = new Map(plan.migrations.map((p) => [p.migration.id, p.migration]));
  return async (id) => byId.get(id);
}

function pickCounts(c: JobCounts): JobCounts {
  return { scanned: c.scanned, changed: c.changed, deleted: c.deleted, skipped: c.skipped, failed: c.failed, shardsDone: c.shardsDone, shardsTotal: c.shardsTotal };
}

/**
 * Runs of the namespace still marked running when a new run takes the lease had lost it (their process
 * died, their lease lapsed, or it was broken): marked abandoned, under the new run's lease, so that
 * nothing but the holder ever writes a run. Ended runs beyond the newest RUNS_KEPT are dropped.
 */
async function supersede(store: Datastore, lease: Lease, by: string): Promise<void> {
  const runs = await recentRuns(store, lease.namespace);
  for (const stale of runs.filter((r) => r.status === 'running')) {
    await store.transaction(async (tx) => {
      await lease.assertHeld(tx);
      const fresh = await loadRun(tx, stale.namespace, stale.id);
      if (fresh?.status !== 'running') return;
      const error = `It lost the migration lock (its process stopped, its lease lapsed, or \`dsmigrate unlock\` broke it); run ${by} took over and resumes its work.`;
      tx.upsert(encodeRunState({ ...fresh, status: 'abandoned', error, errorCode: 'RUN_ABANDONED', waiting: undefined, finishedAt: new Date() }));
    });
  }
  const old = runs.filter((r) => r.status !== 'running').slice(RUNS_KEPT);
  if (old.length > 0) await store.delete(old.map((r) => runKey(lease.namespace, r.id)));
}

/**
 * `dsmigrate unlock`: breaks the lease whoever holds it, and marks the holder's run abandoned in the
 * same transaction, so that its watchers stop at once. The holder itself stops at its next transition
 * (each checks the lease). Returns the run it stopped, if the holder had one.
 */
export async function breakLease(store: Datastore, namespace: string): Promise<{ holder?: Awaited<ReturnType<typeof Lease.holder>>; run?: string }> {
  const running = (await recentRuns(store, namespace)).filter((r) => r.status === 'running');
  return store.transaction(async (tx) => {
    const holder = await Lease.holder(tx, namespace);
    if (holder) tx.delete(leaseKey(namespace));
    const stopped = holder && running.find((r) => r.owner === holder.owner);
    if (stopped) {
      const fresh = await loadRun(tx, namespace, stopped.id);
      if (fresh?.status === 'running') {
        const error = 'The migration lock was broken with `dsmigrate unlock`; this run stopped. The next `dsmigrate migrate` resumes its work.';
        tx.upsert(encodeRunState({ ...fresh, status: 'abandoned', error, errorCode: 'RUN_ABANDONED', waiting: undefined, finishedAt: new Date() }));
      }
    }
    return { holder, run: stopped?.id };
  });
}
