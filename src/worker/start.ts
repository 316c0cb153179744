import type { Datastore } from '../datastore';
import { ensureQueue, type DispatchSettings, type TasksApi } from '../executors/cloud-tasks';
import { errorMessage } from '../errors';
import { checkChecksums, isApplied, operationRunId, planRun, Recorder, type MigrationGraph, type RunEvent } from '../migrations';
import type { ShardEngine } from './engine';
import { RunLease } from './lease';
import { stepFor } from './operations';
import { Pipeline } from './pipeline';
import { encodeRunState, loadRun, newRunId, type DispatchAuthSpec, type RunMigration, type RunState } from './run-state';

export interface StartRunOptions {
  store: Datastore;
  graph: MigrationGraph;
  engine: ShardEngine;
  tasks: TasksApi;
  settings: DispatchSettings;
  controlNamespace?: string;
  target?: string;
  allowChanged?: boolean;
  lockWaitMs?: number;
  command?: string;
  onEvent?: (event: RunEvent) => void;
}

export interface StartedRun {
  /** Undefined when nothing was pending. */
  run?: RunState;
  direction: 'forward' | 'reverse';
  migrations: string[];
  /** About the queue, for the operator. */
  warnings: string[];
}

/**
 * The `migrate --executor cloud-tasks` side of a run: plans it exactly as the local runner does
 * (same checks, same order, same resume rules), takes the migration lock for the run, starts the
 * first migration and enqueues its first task. From there the workers carry the run to its end.
 */
export async function startRun(options: StartRunOptions): Promise<StartedRun> {
  const { store, graph, engine, settings } = options;
  const namespace = options.controlNamespace ?? '';
  const recorder = new Recorder(store, namespace);
  const records = await recorder.list();
  checkChecksums(graph, records, options.allowChanged);
  const plan = planRun(graph, records, options.target);
  const planned = plan.migrations.map((m) => ({ id: m.id, checksum: m.checksum, resume: false }));
  for (const m of planned) for (const op of stepFor(graph, m, plan.direction).operations) await op.validate(store);
  options.onEvent?.({ type: 'plan', direction: plan.direction, migrations: planned.map((m) => m.id) });
  const started: StartedRun = { direction: plan.direction, migrations: planned.map((m) => m.id), warnings: [] };
  if (planned.length === 0) return started;

  started.warnings = (await ensureQueue(options.tasks, settings.queue, settings.queueSettings)).warnings;
  const runId = newRunId();
  const command = options.command ?? `migrate --executor cloud-tasks ${options.target ?? ''}`.trim();
  const lease = new RunLease(store, namespace, runId, settings.leaseTtlMs);
  await lease.acquire(command, options.lockWaitMs);
  let run: RunState | undefined;
  try {
    // Re-read under the lock: another run may have finished work meanwhile.
    const fresh = await recorder.list();
    const migrations: RunMigration[] = [];
    for (const m of planned) {
      const existing = fresh.get(m.id);
      if (plan.direction === 'forward' && isApplied(existing)) continue;
      const resume = existing !== undefined && (existing.state === 'running' || existing.state === 'failed') && existing.direction === plan.direction;
      if (!resume) {
        // Cleared now, before any task exists, rather than by a worker when the migration starts.
        const count = stepFor(graph, m, plan.direction).operations.length;
        for (let i = 0; i < count; i++) await engine.clear(store, operationRunId(m.id, i, plan.direction));
      }
      migrations.push({ ...m, resume });
    }
    if (migrations.length === 0) {
      await lease.release();
      return { ...started, migrations: [] };
    }
    run = {
      id: runId,
      namespace,
      status: 'running',
      direction: plan.direction,
      migrations,
      current: 0,
      op: 0,
      started: -1,
      shards: null,
      dispatch: { queue: settings.queue.name, url: settings.workerUrl, auth: authSpec(settings), dispatchDeadlineMs: settings.dispatchDeadlineMs, sliceBudgetMs: settings.sliceBudgetMs },
      leaseTtlMs: settings.leaseTtlMs,
      command,
      createdAt: new Date(),
    };
    await store.save([encodeRunState(run)]);
    const pipeline = new Pipeline({ store, graph, engine, tasks: options.tasks, secret: settings.auth.kind === 'hmac' ? settings.auth.secret : undefined });
    run = (await pipeline.beginMigration(run)) ?? run;
    await pipeline.dispatcher(run).enqueue(Pipeline.planTask(run));
    return { ...started, run, migrations: migrations.map((m) => m.id) };
  } catch (error) {
    if (run) await markFailed(store, run, recorder, errorMessage(error)).catch(() => undefined);
    await lease.release().catch(() => undefined);
    throw error;
  }
}

function authSpec(settings: DispatchSettings): DispatchAuthSpec {
  return settings.auth.kind === 'hmac' ? { kind: 'hmac' } : settings.auth;
}

/** A run that could not even dispatch its first task: failed, with its first migration, as the local runner records failures. */
async function markFailed(store: Datastore, run: RunState, recorder: Recorder, message: string): Promise<void> {
  const current = await loadRun(store, run.namespace, run.id);
  if (current) await store.save([encodeRunState({ ...current, status: 'failed', error: message, finishedAt: new Date() })]);
  const record = await recorder.get(run.migrations[0].id);
  if (record && record.state === 'running') await recorder.save({ ...record, state: 'failed', error: message, finishedAt: new Date() });
}
