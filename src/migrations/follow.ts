import { setTimeout as sleep } from 'node:timers/promises';
import type { Datastore } from '../datastore';
import { DsMigrateError, type ErrorCode } from '../errors';
import { jobTotals, zeroJobCounts, type JobCounts } from '../sharding';
import { Lease } from './lease';
import type { RunEvent } from './run';
import { loadRun, type RunState } from './run-state';
import type { MigrateSummary } from './runner';

export interface FollowOptions {
  store: Datastore;
  namespace: string;
  runId: string;
  onEvent?: (event: RunEvent) => void;
  pollMs?: number;
  /** Detaches: the watcher returns, the run goes on. */
  signal?: AbortSignal;
}

/** Where the watcher has got to: the next migration and step to report. */
interface Cursor {
  migration: number;
  step: number;
  migrationOpen: boolean;
  stepOpen: boolean;
  waiting?: string;
  /** The step's closing was told. */
  closing: boolean;
}

/**
 * Watches a run of either driver from what is stored (the run, and the current job's checkpoints) and
 * tells it as the run's own events, so the same reporter draws the same bars in `migrate` and in
 * `status --watch` on any machine. It only reads: stopping it stops nothing. Resolves when the run is
 * done or the watcher detached; throws, with the code the run's own process would exit with, when it
 * failed, was abandoned, or lost or let lapse its lease.
 */
export async function followRun(options: FollowOptions): Promise<MigrateSummary> {
  const { store, namespace, runId } = options;
  const emit = options.onEvent ?? (() => undefined);
  const cursor: Cursor = { migration: 0, step: 0, migrationOpen: false, stepOpen: false, closing: false };
  for (;;) {
    const run = await loadRun(store, namespace, runId);
    if (!run) throw new DsMigrateError('BAD_INPUT', `There is no run ${runId} in control namespace "${namespace}" (ended runs are kept for a while, then pruned).`);
    await catchUp(store, run, cursor, emit);
    const finished = run.migrations.slice(0, run.current).map((m) => m.id);
    const summary: MigrateSummary = { run: run.id, applied: [], unapplied: [], faked: [], restarted: [], dryRun: [] };
    summary[run.direction === 'forward' ? 'applied' : 'unapplied'] = finished;
    if (run.status === 'done') {
      await leaseReleased(store, run);
      return summary;
    }
    if (run.status !== 'running') throw endedError(run, emit);
    await checkLease(store, run);
    if (options.signal?.aborted) return summary;
    await sleep(options.pollMs ?? 1000, undefined, { signal: options.signal }).catch(() => undefined);
  }
}

function endedError(run: RunState, emit: (e: RunEvent) => void): DsMigrateError {
  const migration = run.migrations[run.current]?.id ?? '?';
  const message = run.error ?? 'no error was recorded';
  if (run.status === 'abandoned') return new DsMigrateError('RUN_ABANDONED', `Run ${run.id} stopped: ${message}`, { migration });
  emit({ type: 'migration-failed', migration, error: message });
  const code = (run.errorCode ?? 'MIGRATION_FAILED') as ErrorCode;
  return new DsMigrateError(code, `Migration ${migration} failed: ${message}`, { migration, direction: run.direction, target: run.target });
}

/** The run lets go of the lease just after it records its end: wait for that, so that a command run next is not refused. */
async function leaseReleased(store: Datastore, run: RunState, timeoutMs = 10_000): Promise<void> {
  for (const until = Date.now() + timeoutMs; Date.now() < until;) {
    if ((await Lease.holder(store, run.namespace))?.owner !== run.owner) return;
    await sleep(50);
  }
}

async function checkLease(store: Datastore, run: RunState): Promise<void> {
  const problem = await leaseProblem(store, run);
  const fresh = await loadRun(store, run.namespace, run.id);
  if (fresh?.status !== 'running') return; // it ended between the two reads
  if (problem) throw new DsMigrateError('LEASE_LOST', `Run ${run.id} ${problem}`);
}

/**
 * Why a run marked running cannot go on, as `status` and a watcher say it: it lost its lease, or let it
 * lapse (its process stopped, or no Cloud Task ran); undefined while it holds it.
 */
export async function leaseProblem(store: Datastore, run: RunState): Promise<string | undefined> {
  const holder = await Lease.holder(store, run.namespace);
  if (!holder || holder.owner !== run.owner) return `no longer holds the migration lock (now ${holder?.owner ?? 'nobody'}); it stops at its next step. \`dsmigrate migrate\` resumes its work.`;
  if (holder.expiresAt.getTime() >= Date.now()) return undefined;
  const why =
    run.driver === 'cloud-tasks'
      ? `has run no task since its lease lapsed at ${holder.expiresAt.toISOString()}: is the worker running and reachable from the queue? It carries on if its tasks run again; `
      : `has not renewed its lease since it lapsed at ${holder.expiresAt.toISOString()}: its process (${run.owner}) has stopped. `;
  return `${why}\`dsmigrate migrate\` starts a new run that resumes where it stopped.`;
}

/**
 * The counts of the run's step under way, summed from its job's checkpoints when read, and whether every
 * shard is done; undefined before its job has a layout.
 */
export async function stepCounts(store: Datastore, run: RunState): Promise<{ counts: JobCounts; complete: boolean } | undefined> {
  const totals = run.job === null ? undefined : await jobTotals(store, { namespace: run.namespace, id: run.job });
  if (!totals) return undefined;
  const { warnings: _warnings, complete, ...counts } = totals;
  return { counts, complete };
}

/**
 * What a run waits on once every shard of its step is done and the step is not yet recorded complete:
 * whoever finished the last shard records it, and under Cloud Tasks a worker stopped in between leaves
 * it to the queue's retry of that task, which may come minutes later.
 */
export function closingReason(run: RunState): string {
  return run.driver === 'cloud-tasks'
    ? "every shard is done: the step is recorded complete by the task that finished the last shard, or by the queue's retry of that task if its worker stopped"
    : `every shard is done: the step is recorded complete by the run's process (${run.owner})`;
}

/** Emits what happened since the last poll: finished steps with their stored counts, the step under way with its job's, and what it waits on. */
async function catchUp(store: Datastore, run: RunState, c: Cursor, emit: (e: RunEvent) => void): Promise<void> {
  const total = run.migrations.length;
  while (c.migration < total && (c.migration < run.current || run.started >= c.migration)) {
    const planned = run.migrations[c.migration];
    const operations = planned.steps.length;
    const finished = c.migration < run.current;
    if (!c.migrationOpen) {
      emit({ type: 'migration-start', migration: planned.id, index: c.migration, total, resumed: false });
      c.migrationOpen = true;
    }
    const stepsDone = finished ? operations : run.step;
    for (; c.step < stepsDone; c.step++, c.stepOpen = false, c.closing = false) {
      if (!c.stepOpen) emit({ type: 'operation-start', migration: planned.id, operation: c.step, operations, description: planned.descriptions[c.step] });
      const counts = planned.counts[c.step] ?? zeroJobCounts();
      emit({ type: 'operation-done', migration: planned.id, operation: c.step, result: { ...counts, warnings: [] } });
    }
    if (finished) {
      emit({ type: 'migration-done', migration: planned.id, state: run.direction === 'forward' ? 'applied' : 'unapplied' });
      Object.assign(c, { migration: c.migration + 1, step: 0, migrationOpen: false, stepOpen: false, closing: false });
      continue;
    }
    if (run.status === 'running' && c.step < operations) {
      if (!c.stepOpen) {
        emit({ type: 'operation-start', migration: planned.id, operation: c.step, operations, description: planned.descriptions[c.step] });
        c.stepOpen = true;
      }
      const step = await stepCounts(store, run);
      if (step) {
        const { counts, complete } = step;
        emit({ type: 'progress', migration: planned.id, operation: c.step, progress: counts });
        if (complete && !c.closing) emit({ type: 'closing', migration: planned.id, operation: c.step, reason: closingReason(run) });
        c.closing = complete;
      }
      const waiting = run.waiting && `${run.waiting.attempts}:${run.waiting.reason}`;
      if (run.waiting && waiting !== c.waiting) emit({ type: 'waiting', migration: planned.id, operation: c.step, reason: run.waiting.reason, attempts: run.waiting.attempts });
      c.waiting = waiting;
    }
    return;
  }
}
