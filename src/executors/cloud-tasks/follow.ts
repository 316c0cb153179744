import { setTimeout as sleep } from 'node:timers/promises';
import type { Datastore } from '../../datastore';
import { DsMigrateError } from '../../errors';
import { Lease, Recorder, resolverOf, runOwner, type MigrateSummary, type MigrationGraph, type OperationResult, type RunEvent } from '../../migrations';
import { loadRun, type RunState } from './run-state';
import { runSteps } from './run-steps';
import type { ShardEngine } from './shard-engine';

export interface FollowOptions {
  store: Datastore;
  graph: MigrationGraph;
  engine: ShardEngine;
  namespace: string;
  runId: string;
  onEvent?: (event: RunEvent) => void;
  pollMs?: number;
  signal?: AbortSignal;
}

/** Where the follower has got to: the next migration and step to report. */
interface Cursor {
  migration: number;
  op: number;
  migrationOpen: boolean;
  opOpen: boolean;
}

/**
 * Watches a run from Datastore (the run's state, the records and the current job's checkpoints) and
 * tells it as the local runner's events, so the same reporter draws the same bars. It only reads:
 * stopping it stops nothing. Resolves when the run is done; throws when it failed, was stopped, or
 * its lease lapsed (no task ran for the lease's time to live: workers gone or unreachable).
 */
export async function followRun(options: FollowOptions): Promise<MigrateSummary> {
  const { store, namespace, runId } = options;
  const emit = options.onEvent ?? (() => undefined);
  const cursor: Cursor = { migration: 0, op: 0, migrationOpen: false, opOpen: false };
  const summary: MigrateSummary = { applied: [], unapplied: [], faked: [], restarted: [], dryRun: [] };
  for (;;) {
    const run = await loadRun(store, namespace, runId);
    if (!run) throw new DsMigrateError('CLOUD_TASKS', `Run ${runId} is gone from namespace "${namespace}".`);
    await catchUp(options, run, cursor, emit, summary);
    if (run.status === 'done') {
      await leaseReleased(store, run);
      return summary;
    }
    if (run.status === 'failed') {
      const migration = run.migrations[run.current]?.id ?? '?';
      emit({ type: 'migration-failed', migration, error: run.error ?? 'unknown error' });
      throw new DsMigrateError('MIGRATION_FAILED', `Migration ${migration} failed: ${run.error}`, { migration });
    }
    if (run.status === 'abandoned') throw new DsMigrateError('RUN_ABANDONED', `Run ${run.id} stopped: ${run.error}`);
    await checkLease(store, run);
    if (options.signal?.aborted) return summary;
    await sleep(options.pollMs ?? 1000, undefined, { signal: options.signal }).catch(() => undefined);
  }
}

/** The worker lets go of the lease just after it records the end: wait for that, so a command run next is not refused. */
async function leaseReleased(store: Datastore, run: RunState, timeoutMs = 10_000): Promise<void> {
  for (const until = Date.now() + timeoutMs; Date.now() < until;) {
    if ((await Lease.holder(store, run.namespace))?.owner !== runOwner(run.id)) return;
    await sleep(50);
  }
}

async function checkLease(store: Datastore, run: RunState): Promise<void> {
  const holder = await Lease.holder(store, run.namespace);
  const fresh = await loadRun(store, run.namespace, run.id);
  if (fresh?.status !== 'running') return; // it ended between the two reads
  if (!holder || holder.owner !== runOwner(run.id)) {
    throw new DsMigrateError('LEASE_LOST', `Run ${run.id} no longer holds the migration lock (now ${holder?.owner ?? 'nobody'}); its workers will stop.`);
  }
  if (holder.expiresAt.getTime() < Date.now()) {
    throw new DsMigrateError(
      'CLOUD_TASKS',
      `Run ${run.id} has run no task since its lease lapsed at ${holder.expiresAt.toISOString()}: is the worker running and reachable from the queue? ` +
        'It carries on if its tasks run again; `dsmigrate migrate --executor cloud-tasks` starts a new run that resumes where it stopped.',
    );
  }
}

async function catchUp(options: FollowOptions, run: RunState, c: Cursor, emit: (e: RunEvent) => void, summary: MigrateSummary): Promise<void> {
  const recorder = new Recorder(options.store, run.namespace);
  const total = run.migrations.length;
  while (c.migration < total && (c.migration < run.current || run.started >= c.migration)) {
    const planned = run.migrations[c.migration];
    const { steps } = await runSteps(resolverOf(options.graph), planned, run.direction);
    const finished = c.migration < run.current;
    if (!c.migrationOpen) {
      emit({ type: 'migration-start', migration: planned.id, index: c.migration, total, resumed: false });
      c.migrationOpen = true;
    }
    const record = finished && run.direction === 'reverse' ? undefined : await recorder.get(planned.id);
    const stepsDone = finished ? steps.length : run.op;
    for (; c.op < stepsDone; c.op++, c.opOpen = false) {
      if (!c.opOpen) emit({ type: 'operation-start', migration: planned.id, operation: c.op, operations: steps.length, description: steps[c.op].operation.describe() });
      const counted = record?.operations[steps[c.op].index];
      const result: OperationResult = {
        scanned: counted?.scanned ?? 0,
        changed: counted?.changed ?? 0,
        deleted: counted?.deleted ?? 0,
        skipped: counted?.skipped ?? 0,
        failed: counted?.failed ?? 0,
        shardsDone: counted?.shardsDone ?? 0,
        shardsTotal: counted?.shardsTotal ?? 0,
        warnings: [],
      };
      emit({ type: 'operation-done', migration: planned.id, operation: c.op, result });
    }
    if (finished) {
      const state = run.direction === 'forward' ? 'applied' : 'unapplied';
      (run.direction === 'forward' ? summary.applied : summary.unapplied).push(planned.id);
      emit({ type: 'migration-done', migration: planned.id, state });
      Object.assign(c, { migration: c.migration + 1, op: 0, migrationOpen: false, opOpen: false });
      continue;
    }
    if (run.status === 'running' && c.op < steps.length) {
      if (!c.opOpen) {
        emit({ type: 'operation-start', migration: planned.id, operation: c.op, operations: steps.length, description: steps[c.op].operation.describe() });
        c.opOpen = true;
      }
      const totals = run.job === null ? undefined : await options.engine.totals(options.store, { namespace: run.namespace, id: run.job });
      if (totals) {
        const { warnings: _warnings, complete: _complete, ...progress } = totals;
        emit({ type: 'progress', migration: planned.id, operation: c.op, progress });
      }
    }
    return;
  }
}
