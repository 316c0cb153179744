import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { startCloudTasksEmulator, type CloudTasksEmulator, type CloudTasksEmulatorOptions } from '../../../emulator/cloud-tasks';
import type { EmulatorFlavour } from '../../../emulator/datastore-emulator';
import { Datastore, Entity, Key } from '../../../src/datastore';
import type { CloudTasksClient } from '@google-cloud/tasks';
import { createTasksClient, DEFAULT_QUEUE_SETTINGS, parseQueuePath, startRun, type DispatchSettings, type QueuePath, type StartedRun, type WorkerSettings } from '../../../src/executors/cloud-tasks';
import { Lease, loadGraph, loadRun, type MigrationGraph, type RunState } from '../../../src/migrations';
import { emulatorHosts, uniqueProject } from '../../support/emulators';
import { startWorker, type RunningWorker, type WorkerLogEntry } from '../../../src/worker';

export const SECRET = 'test-secret-0123456789abcdef';

/**
 * One running emulator, for tests of the HTTP and CLI layers (the engine's behaviour under both is
 * tested with describeEachFlavour): `prefer` if it runs, else the other.
 */
export function singleFlavour(prefer: EmulatorFlavour, prefix = 't'): { flavour: EmulatorFlavour; host: string; projectId: string; env(): NodeJS.ProcessEnv; connect(): Promise<Datastore> } {
  const hosts = emulatorHosts();
  const flavour = hosts[prefer] ? prefer : (Object.keys(hosts)[0] as EmulatorFlavour);
  const host = hosts[flavour]!;
  const projectId = uniqueProject(prefix);
  return {
    flavour,
    host,
    projectId,
    env: () => ({ ...process.env, DATASTORE_EMULATOR_HOST: host, DATASTORE_PROJECT_ID: projectId, GOOGLE_CLOUD_PROJECT: projectId }),
    connect: () => Datastore.connect({ emulatorHost: host, projectId }),
  };
}

/** Retries fast, so that injected failures cost milliseconds in tests rather than seconds. */
export const FAST_QUEUE = { ...DEFAULT_QUEUE_SETTINGS, minBackoffSeconds: 0.05, maxBackoffSeconds: 0.5, maxDoublings: 3 };

export interface TasksHarness {
  emulator: CloudTasksEmulator;
  tasks: CloudTasksClient;
  queue: QueuePath;
  dispatch(workerUrl: string, overrides?: Partial<DispatchSettings>): DispatchSettings;
  workerSettings(): WorkerSettings;
  close(): Promise<void>;
}

let queues = 0;

/** A Cloud Tasks emulator, a client for it, and a queue name of this test's own. */
export async function startTasks(options: CloudTasksEmulatorOptions = {}): Promise<TasksHarness> {
  const emulator = await startCloudTasksEmulator(options);
  const tasks = createTasksClient(emulator.host);
  const queue = parseQueuePath(`projects/p-${randomBytes(3).toString('hex')}/locations/us-central1/queues/q${++queues}`);
  return {
    emulator,
    tasks,
    queue,
    dispatch: (workerUrl, overrides = {}) => ({
      queue,
      workerUrl,
      auth: { kind: 'hmac', secret: SECRET },
      emulatorHost: emulator.host,
      sliceBudgetMs: 150,
      dispatchDeadlineMs: 60_000,
      leaseTtlMs: 60_000,
      maxStepAttempts: 20,
      queueSettings: FAST_QUEUE,
      ...overrides,
    }),
    workerSettings: () => ({ auth: { kind: 'hmac', secret: SECRET, maxAgeMs: 3_600_000 }, emulatorHost: emulator.host }),
    close: async () => {
      await tasks.close();
      await emulator.stop();
    },
  };
}

export async function graphOf(dir: string): Promise<MigrationGraph> {
  return loadGraph([{ app: 'default', dir: path.join(dir, 'migrations') }]);
}

export function inProcessWorker(h: TasksHarness, store: Datastore, graph: MigrationGraph, log: WorkerLogEntry[] = []): Promise<RunningWorker> {
  return startWorker({ store, graph, settings: h.workerSettings(), log: (entry) => log.push(entry) });
}

/** Starts a run through the emulator and waits until the run is no longer running. */
export async function runThroughTasks(
  h: TasksHarness,
  store: Datastore,
  graph: MigrationGraph,
  workerUrl: string,
  options: { target?: string; timeoutMs?: number; dispatch?: Partial<DispatchSettings>; controlNamespace?: string; lockWaitMs?: number } = {},
): Promise<{ started: StartedRun; run?: RunState }> {
  const { target, controlNamespace, lockWaitMs } = options;
  const started = await startRun({ store, graph, tasks: h.tasks, settings: h.dispatch(workerUrl, options.dispatch), target, controlNamespace, lockWaitMs });
  if (!started.run) return { started };
  return { started, run: await waitForRun(store, started.run.id, options.timeoutMs, controlNamespace) };
}

/** Waits until the run has ended and, if it finished or failed, let go of the lock (just after recording so). */
export async function waitForRun(store: Datastore, runId: string, timeoutMs = 60_000, namespace = ''): Promise<RunState> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const run = await loadRun(store, namespace, runId);
    const released = run?.status === 'abandoned' || (await Lease.holder(store, namespace))?.owner !== run?.owner;
    if (run && run.status !== 'running' && released) return run;
    if (Date.now() > deadline) throw new Error(`run ${runId} still running after ${timeoutMs} ms: ${JSON.stringify(run)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Every entity of the kinds in the namespaces, by key, as plain values (control kinds excluded). */
export async function snapshot(store: Datastore, kinds: readonly string[], namespaces: readonly string[] = ['']): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const namespace of namespaces) {
    for (const kind of kinds) {
      for await (const e of store.query({ kind, namespace }))
        out[e.key.toString()] = {
          ...e.toObject(),
          __unindexed: e
            .names()
            .filter((n) => e.isIndexed(n) === false)
            .sort(),
        };
    }
  }
  return out;
}

/** Counters with integer ids, names and parents mixed, as real data is. */
export async function seedCounters(store: Datastore, n: number, kind = 'Counter'): Promise<void> {
  const entities = Array.from({ length: n }, (_, i) =>
    Entity.from(i % 3 === 0 ? Key.of(kind, i + 1) : i % 3 === 1 ? Key.of(kind, `c-${i}`) : Key.of('Group', `g${i % 5}`, kind, i + 1), { n: 0, label: `c${i}` }),
  );
  await store.save(entities);
}

export async function counterValues(store: Datastore, kind = 'Counter'): Promise<number[]> {
  const values: number[] = [];
  for await (const e of store.query({ kind })) values.push(Number(e.get('n')));
  return values;
}

/** A migration adding 1 to every Counter's `n`; `delayMs` per entity makes it slow enough to interrupt. */
export const INCREMENT_MIGRATION = (options = '{ shardCount: 3, batchSize: 40 }', delayMs = 0) => `
import { defineMigration, MapFunctionOnEntities } from 'datastore-migrate';
export default defineMigration({
  operations: [
    new MapFunctionOnEntities('Counter', async (c) => {
      ${delayMs ? `await new Promise((r) => setTimeout(r, ${delayMs}));` : ''}
      c.set('n', Number(c.get('n') ?? 0) + 1);
    }, ${options}),
  ],
});
`;

export const TAG_MIGRATION = `
import { defineMigration, AddFieldData } from 'datastore-migrate';
export default defineMigration({ operations: [new AddFieldData('Counter', 'tag', { default: 'seen', batchSize: 60 })] });
`;

// ---- recovery tests (test/worker/recovery-*.test.ts): the local runner's recovery.test.ts, through Cloud Tasks ----

/** Every fault the emulator can inject, at the rates the recovery tests run under. */
export const RECOVERY_FAULTS = { failFraction: 0.2, duplicateFraction: 0.1, lostAnswerFraction: 0.1, overlappingDuplicateFraction: 0.1 } as const;

export { migrationOf, incrementOp, throwingAtOp, seedPeople, personValues, countOf } from '../../support/people';
