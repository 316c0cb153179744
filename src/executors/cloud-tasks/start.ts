import type { Datastore } from '../../datastore';
import { Run, type Direction, type MigrationGraph, type RunRequest, type RunState } from '../../migrations';
import { encodeDispatch, type DispatchSpec } from './dispatch-spec';
import { Pipeline } from './pipeline';
import { ensureQueue } from './queue';
import type { DispatchSettings } from './settings';
import type { TasksApi } from './tasks-api';

export interface StartRunOptions extends RunRequest {
  store: Datastore;
  graph: MigrationGraph;
  tasks: TasksApi;
  settings: DispatchSettings;
  controlNamespace?: string;
  /** Entities per second for every step whose operation sets no rate (`--max-rate`), shared by its slices. */
  maxEntitiesPerSecond?: number;
  command?: string;
}

export interface StartedRun {
  /** Undefined when nothing was pending. */
  run?: RunState;
  direction: Direction;
  migrations: string[];
  restarted: string[];
  /** The queue the run's tasks go to. */
  queue: string;
  /** About the queue, for the operator. */
  warnings: string[];
}

/**
 * The `migrate --executor cloud-tasks` side of a run: opens the run (src/migrations/run.ts: lease,
 * restarts, plan), begins its first migration and enqueues its first task. From there the workers
 * carry it to its end, and anyone can watch it (`dsmigrate status --watch`).
 */
export async function startRun(options: StartRunOptions): Promise<StartedRun> {
  const { store, graph, settings } = options;
  const dispatch: DispatchSpec = {
    queue: settings.queue.name,
    url: settings.workerUrl,
    auth: settings.auth.kind === 'hmac' ? { kind: 'hmac' } : settings.auth,
    dispatchDeadlineMs: settings.dispatchDeadlineMs,
    sliceBudgetMs: settings.sliceBudgetMs,
    maxStepAttempts: settings.maxStepAttempts,
    maxEntitiesPerSecond: options.maxEntitiesPerSecond,
  };
  const { run, plan, restarted } = await Run.open({
    ...options,
    namespace: options.controlNamespace ?? '',
    driver: 'cloud-tasks',
    leaseTtlMs: settings.leaseTtlMs,
    command: options.command ?? `migrate --executor cloud-tasks ${options.target ?? ''}`.trim(),
    settings: encodeDispatch(dispatch),
    // The plan is this process's to tell; what happens next is the watcher's (src/migrations/follow.ts), from any machine.
    onEvent: (e) => (e.type === 'plan' ? options.onEvent?.(e) : undefined),
  });
  const started: StartedRun = { direction: plan.direction, migrations: plan.migrations.map((p) => p.migration.id), restarted, queue: dispatch.queue, warnings: [] };
  if (!run) return started;
  try {
    started.warnings = (await ensureQueue(options.tasks, settings.queue, settings.queueSettings)).warnings;
    await run.begin();
    const pipeline = new Pipeline({ store, graph, tasks: options.tasks, secret: settings.auth.kind === 'hmac' ? settings.auth.secret : undefined });
    await pipeline.dispatcher(run.state).enqueue(Pipeline.startTask(run.state));
    return { ...started, run: run.state };
  } catch (error) {
    await run.fail(error).catch(() => undefined);
    await run.release().catch(() => undefined);
    throw error;
  }
}
