import type { Datastore } from '../../datastore';
import { errorMessage } from '../../errors';
import { Lease, Lifecycle, resolveTarget, runOwner, type Direction, type MigrationGraph, type RunEvent } from '../../migrations';
import { Pipeline } from './pipeline';
import { ensureQueue } from './queue';
import { encodeRunState, loadRun, newRunId, pruneRuns, type DispatchAuthSpec, type RunState } from './run-state';
import type { DispatchSettings } from './settings';
import type { ShardEngine } from './shard-engine';
import type { TasksApi } from './tasks-api';

export interface StartRunOptions {
  store: Datastore;
  graph: MigrationGraph;
  engine: ShardEngine;
  tasks: TasksApi;
  settings: DispatchSettings;
  controlNamespace?: string;
  target?: string;
  allowChanged?: boolean;
  /** Entities per second for every step whose operation sets no rate (`--max-rate`), shared by its slices. */
  maxEntitiesPerSecond?: number;
  /** Forget these failed migrations' state first (`--restart`). */
  restart?: readonly string[];
  lockWaitMs?: number;
  command?: string;
  onEvent?: (event: RunEvent) => void;
}

export interface StartedRun {
  /** Undefined when nothing was pending. */
  run?: RunState;
  direction: Direction;
  migrations: string[];
  restarted: string[];
  /** About the queue, for the operator. */
  warnings: string[];
}

/** Ended runs kept for `status`. */
const RUNS_KEPT = 20;

/**
 * The `migrate --executor cloud-tasks` side of a run: takes the lease for the run, plans under it
 * through the lifecycle (the same checks, order and resume rules as the local runner), begins the
 * first migration and enqueues its first task. From there the workers carry the run to its end.
 */
export async function startRun(options: StartRunOptions): Promise<StartedRun> {
  const { store, graph, settings } = options;
  const namespace = options.controlNamespace ?? '';
  const runId = newRunId();
  const command = options.command ?? `migrate --executor cloud-tasks ${options.target ?? ''}`.trim();
  const lease = new Lease(store, namespace, runOwner(runId), settings.leaseTtlMs);
  await lease.acquire(command, options.lockWaitMs);
  let run: RunState | undefined;
  try {
    const lifecycle = new Lifecycle(store, lease);
    const restarted: string[] = [];
    for (const name of options.restart ?? []) {
      const m = resolveTarget(graph, name);
      await lifecycle.restart(m);
      restarted.push(m.id);
    }
    const plan = await lifecycle.prepare(graph, options);
    const ids = plan.migrations.map((p) => p.migration.id);
    options.onEvent?.({ type: 'plan', direction: plan.direction, migrations: ids });
    const started: StartedRun = { direction: plan.direction, migrations: ids, restarted, warnings: [] };
    if (ids.length === 0) {
      await lease.release();
      return started;
    }
    started.warnings = (await ensureQueue(options.tasks, settings.queue, settings.queueSettings)).warnings;
    await pruneRuns(store, namespace, RUNS_KEPT);
    run = {
      id: runId,
      namespace,
      status: 'running',
      direction: plan.direction,
      migrations: plan.migrations.map((p) => ({ id: p.migration.id, checksum: p.migration.checksum, steps: p.steps.map((s) => s.index) })),
      current: 0,
      op: 0,
      started: -1,
      job: null,
      shards: null,
      dispatch: {
        queue: settings.queue.name,
        url: settings.workerUrl,
        auth: authSpec(settings),
        dispatchDeadlineMs: settings.dispatchDeadlineMs,
        sliceBudgetMs: settings.sliceBudgetMs,
        maxStepAttempts: settings.maxStepAttempts,
        maxEntitiesPerSecond: options.maxEntitiesPerSecond,
      },
      leaseTtlMs: settings.leaseTtlMs,
      command,
      createdAt: new Date(),
    };
    await store.save([encodeRunState(run)]);
    const pipeline = new Pipeline({ store, graph, engine: options.engine, tasks: options.tasks, secret: settings.auth.kind === 'hmac' ? settings.auth.secret : undefined });
    run = (await pipeline.beginMigration(run)) ?? run;
    await pipeline.dispatcher(run).enqueue(Pipeline.planTask(run));
    return { ...started, run };
  } catch (error) {
    if (run) await markFailed(store, lease, graph, run, errorMessage(error)).catch(() => undefined);
    await lease.release().catch(() => undefined);
    throw error;
  }
}

function authSpec(settings: DispatchSettings): DispatchAuthSpec {
  return settings.auth.kind === 'hmac' ? { kind: 'hmac' } : settings.auth;
}

/** A run that could not even dispatch its first task: failed, with its first migration, through the lifecycle. */
async function markFailed(store: Datastore, lease: Lease, graph: MigrationGraph, run: RunState, message: string): Promise<void> {
  const m = graph.byId.get(run.migrations[0].id);
  await store.transaction(async (tx) => {
    const current = await loadRun(tx, run.namespace, run.id);
    if (current) tx.upsert(encodeRunState({ ...current, status: 'failed', error: message, finishedAt: new Date() }));
    if (m && current && current.started >= 0) await new Lifecycle(store, lease).fail(m, message, tx);
  });
}
