import { setTimeout as sleep } from 'node:timers/promises';
import { CONTROL_KINDS } from '../../src/control';
import type { Datastore } from '../../src/datastore';
import { startRun, type StartedRun } from '../../src/executors/cloud-tasks';
import { breakLease, Lease, Recorder, type MigrationGraph } from '../../src/migrations';
import type { RunningWorker } from '../../src/worker';
import { tempApp } from '../support/cli';
import { describeEachFlavour, uniqueProject } from '../support/emulators';
import {
  countOf,
  graphOf,
  incrementOp,
  inProcessWorker,
  migrationOf,
  personValues,
  RECOVERY_FAULTS,
  runThroughTasks,
  seedPeople,
  startTasks,
  throwingAtOp,
  type TasksHarness,
  waitForRun,
} from './support/harness';

/**
 * The recovery paths of test/migrations/recovery.test.ts (the local runner), through
 * `--executor cloud-tasks` with every fault of the emulator on: failed, duplicated, overlapping and
 * unanswered dispatches. Each test checks every entity's value and the entity count.
 */
const N = 200;
const RUN_MS = 120_000;

describeEachFlavour('recovery through Cloud Tasks under faults', (ctx) => {
  let h: TasksHarness;
  const workers: RunningWorker[] = [];

  beforeAll(async () => {
    h = await startTasks({ seed: 10, ...RECOVERY_FAULTS });
  });
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await h.close();
  });

  /** A project of the test's own, seeded with N Persons. */
  async function fresh(): Promise<Datastore> {
    const store = await ctx.connect({ projectId: uniqueProject('rct') });
    await seedPeople(store, N);
    return store;
  }

  /** A worker of the test's own, on its own connection, loaded with `graph`. */
  async function workerFor(store: Datastore, graph: MigrationGraph): Promise<RunningWorker> {
    const own = await ctx.connect({ projectId: store.projectId });
    const worker = await inProcessWorker(h, own, graph);
    workers.push(worker);
    return worker;
  }

  const start = (store: Datastore, graph: MigrationGraph, worker: RunningWorker, options: { target?: string; lockWaitMs?: number; restart?: string[] } = {}): Promise<StartedRun> =>
    startRun({ store, graph, tasks: h.tasks, settings: h.dispatch(worker.url), ...options });

  test(
    'backs out of a migration that failed in its first operation without reversing anything else',
    async () => {
      const store = await fresh();
      const alwaysThrows = `new MapFunctionOnEntities('Person', () => { throw new Error('broken'); }, { reverse: (p) => void p.set('reversedBroken', true) })`;
      const graph = await graphOf(tempApp({ 'migrations/0001_a.ts': migrationOf(incrementOp('a')), 'migrations/0002_b.ts': migrationOf(alwaysThrows, incrementOp('b')) }));
      const worker = await workerFor(store, graph);

      const { run: failed } = await runThroughTasks(h, store, graph, worker.url, { timeoutMs: RUN_MS });
      expect(failed).toMatchObject({ status: 'failed', error: expect.stringContaining('broken') });
      expect(await new Recorder(store, '').get('default:0002_b')).toMatchObject({ state: 'failed' });

      const { started, run: back } = await runThroughTasks(h, store, graph, worker.url, { target: '0001', timeoutMs: RUN_MS });
      expect(started).toMatchObject({ direction: 'reverse', migrations: ['default:0002_b'] });
      // Its second operation never started: the back-out has no step for it.
      expect(started.run?.migrations.map((m) => m.steps.includes(1))).toEqual([false]);
      expect(back?.status).toBe('done');

      const a = await personValues(store, 'a');
      expect(a).toHaveLength(N);
      expect(countOf(a, 1)).toBe(N);
      for (const field of ['b', 'reversedBroken']) {
        const values = await personValues(store, field);
        expect(values).toHaveLength(N);
        expect(countOf(values, 0)).toBe(N);
      }
      const records = await new Recorder(store, '').list();
      expect([...records.values()].map((r) => [r.id, r.state])).toEqual([['default:0001_a', 'applied']]);
      expect(await Lease.holder(store, '')).toBeUndefined();
    },
    RUN_MS * 2,
  );

  test(
    'backs out of a migration that failed halfway through a later operation over exactly the committed ranges',
    async () => {
      const store = await fresh();
      const graph = await graphOf(tempApp({ 'migrations/0001_ab.ts': migrationOf(incrementOp('a'), throwingAtOp('b', 'p151')) }));
      const worker = await workerFor(store, graph);

      const { run: failed } = await runThroughTasks(h, store, graph, worker.url, { timeoutMs: RUN_MS });
      expect(failed).toMatchObject({ status: 'failed', error: expect.stringContaining('cannot handle p151') });
      const partial = await personValues(store, 'b');
      expect(partial).toHaveLength(N);
      expect(countOf(partial, 1)).toBeGreaterThan(0);
      expect(countOf(partial, 0)).toBeGreaterThan(0);
      expect(countOf(partial, 1) + countOf(partial, 0)).toBe(N);
      expect(countOf(await personValues(store, 'a'), 1)).toBe(N);

      const { started, run: back } = await runThroughTasks(h, store, graph, worker.url, { target: 'zero', timeoutMs: RUN_MS });
      expect(started.run?.migrations).toEqual([expect.objectContaining({ id: 'default:0001_ab', steps: [1, 0] })]);
      expect(back?.status).toBe('done');
      // Reversing a range that never ran would leave -1; missing a committed one, 1.
      for (const field of ['a', 'b']) {
        const after = await personValues(store, field);
        expect(after).toHaveLength(N);
        expect(countOf(after, 0)).toBe(N);
      }
      expect(await new Recorder(store, '').get('default:0001_ab')).toBeUndefined();
    },
    RUN_MS * 2,
  );

  test(
    'a back-out stopped midway (its worker cut off, its lease broken), then a forward run, leaves exactly +1',
    async () => {
      const store = await fresh();
      // A slow reverse (20 ms an entity, batches of 10), so that the back-out can be caught midway.
      const graph = await graphOf(tempApp({ 'migrations/0001_a.ts': migrationOf(incrementOp('a', '{ batchSize: 10, shardCount: 2 }', 20)) }));
      const worker = await workerFor(store, graph);
      expect((await runThroughTasks(h, store, graph, worker.url, { timeoutMs: RUN_MS })).run?.status).toBe('done');
      expect(countOf(await personValues(store, 'a'), 1)).toBe(N);

      const back = (await start(store, graph, worker, { target: 'zero' })).run!;
      try {
        for (const until = Date.now() + RUN_MS; countOf(await personValues(store, 'a'), 0) < 30; await sleep(50)) {
          if (Date.now() > until) throw new Error(`the back-out made no progress: ${JSON.stringify(h.emulator.stats())}`);
        }
        // No dispatch reaches the worker any more, and the lease is broken (`dsmigrate unlock`).
        h.emulator.setFaults({ failFraction: 1 });
        expect(await breakLease(store, '')).toMatchObject({ holder: { owner: `run:${back.id}` }, run: back.id });
        // Slices under way finish their time budget; the continuations they enqueue are not delivered.
        await sleep(2000);
      } finally {
        h.emulator.setFaults(RECOVERY_FAULTS);
      }
      const half = await personValues(store, 'a');
      expect(half).toHaveLength(N);
      expect(countOf(half, 0)).toBeGreaterThan(0);
      expect(countOf(half, 1)).toBeGreaterThan(0);
      expect(countOf(half, 0) + countOf(half, 1)).toBe(N);
      expect(await new Recorder(store, '').get('default:0001_a')).toMatchObject({ state: 'running', direction: 'reverse' });

      const { started, run: forward } = await runThroughTasks(h, store, graph, worker.url, { timeoutMs: RUN_MS, lockWaitMs: 30_000 });
      expect(started).toMatchObject({ direction: 'forward', migrations: ['default:0001_a'] });
      expect(forward?.status).toBe('done');
      const a = await personValues(store, 'a');
      expect(a).toHaveLength(N);
      expect(countOf(a, 1)).toBe(N);
      expect(await new Recorder(store, '').get('default:0001_a')).toMatchObject({ state: 'applied', direction: 'forward' });
      // The stopped back-out's late tasks found its lease gone and stopped it without writing.
      expect((await waitForRun(store, back.id, RUN_MS)).status).toBe('abandoned');
      expect(countOf(await personValues(store, 'a'), 1)).toBe(N);
    },
    RUN_MS * 4,
  );

  test(
    'two back-outs to the same target started at once, the second waiting for the lock, reverse once',
    async () => {
      const store = await fresh();
      const graph = await graphOf(tempApp({ 'migrations/0001_a.ts': migrationOf(incrementOp('a')) }));
      const worker = await workerFor(store, graph);
      expect((await runThroughTasks(h, store, graph, worker.url, { timeoutMs: RUN_MS })).run?.status).toBe('done');

      const both = await Promise.all([start(store, graph, worker, { target: 'zero', lockWaitMs: RUN_MS }), start(store, graph, worker, { target: 'zero', lockWaitMs: RUN_MS })]);
      // One planned the back-out and held the lock to its end; the other then found nothing to do.
      const runs = both.flatMap((s) => (s.run ? [s.run] : []));
      expect(runs).toHaveLength(1);
      expect(both.map((s) => s.migrations.length).sort()).toEqual([0, 1]);
      expect((await waitForRun(store, runs[0].id, RUN_MS)).status).toBe('done');

      const a = await personValues(store, 'a');
      expect(a).toHaveLength(N);
      expect(countOf(a, 0)).toBe(N);
      expect(await new Recorder(store, '').get('default:0001_a')).toBeUndefined();
    },
    RUN_MS * 3,
  );

  test(
    'two control namespaces over the same migration files and different data namespaces keep apart',
    async () => {
      const store = await fresh();
      await Promise.all([seedPeople(store, N, 'ta'), seedPeople(store, N, 'tb')]);
      // The same file text in two apps; each app names its tenant in a file beside its migrations (the
      // migration files run outside jest's sandbox, so they do not see this test's process.env).
      const text = `
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { defineMigration, MapFunctionOnEntities } from 'datastore-migrate';
const namespace = readFileSync(path.join(__dirname, '..', 'tenant.txt'), 'utf8').trim();
export default defineMigration({ operations: [${incrementOp('a', '{ batchSize: 25, shardCount: 2, namespace }')}] });
`;
      const graphFor = (tenant: string): Promise<MigrationGraph> => graphOf(tempApp({ 'migrations/0001_a.ts': text, 'tenant.txt': tenant }));
      const [graphA, graphB] = [await graphFor('ta'), await graphFor('tb')];
      expect(graphA.ordered[0].checksum).toBe(graphB.ordered[0].checksum);
      const [workerA, workerB] = [await workerFor(store, graphA), await workerFor(store, graphB)];

      const [ra, rb] = await Promise.all([
        runThroughTasks(h, store, graphA, workerA.url, { controlNamespace: 'ctl-a', timeoutMs: RUN_MS }),
        runThroughTasks(h, store, graphB, workerB.url, { controlNamespace: 'ctl-b', timeoutMs: RUN_MS }),
      ]);
      expect([ra.run?.status, rb.run?.status]).toEqual(['done', 'done']);
      for (const ns of ['ta', 'tb']) {
        const values = await personValues(store, 'a', ns);
        expect(values).toHaveLength(N);
        expect({ ns, values }).toEqual({ ns, values: Array(N).fill(1) });
      }

      expect((await runThroughTasks(h, store, graphA, workerA.url, { controlNamespace: 'ctl-a', target: 'zero', timeoutMs: RUN_MS })).run?.status).toBe('done');
      const ta = await personValues(store, 'a', 'ta');
      expect(ta).toHaveLength(N);
      expect({ ta }).toEqual({ ta: Array(N).fill(0) });
      const tb = await personValues(store, 'a', 'tb');
      expect(tb).toHaveLength(N);
      expect({ tb }).toEqual({ tb: Array(N).fill(1) });
      const def = await personValues(store, 'a');
      expect(def).toHaveLength(N);
      expect({ def }).toEqual({ def: Array(N).fill(0) });

      expect(await new Recorder(store, 'ctl-a').get('default:0001_a')).toBeUndefined();
      expect(await new Recorder(store, 'ctl-b').get('default:0001_a')).toMatchObject({ state: 'applied' });
      // No control state outside the control namespaces.
      for (const kind of Object.values(CONTROL_KINDS)) {
        for (const namespace of ['', 'ta', 'tb']) {
          for await (const keys of store.keys({ kind, namespace })) expect(keys.map(String)).toEqual([]);
        }
      }
    },
    RUN_MS * 4,
  );

  test(
    'restarts a failed migration whose file was fixed',
    async () => {
      const store = await fresh();
      const broken = await graphOf(tempApp({ 'migrations/0001_a.ts': migrationOf(throwingAtOp('a', 'p151')) }));
      const brokenWorker = await workerFor(store, broken);
      expect((await runThroughTasks(h, store, broken, brokenWorker.url, { timeoutMs: RUN_MS })).run).toMatchObject({ status: 'failed', error: expect.stringContaining('cannot handle p151') });
      const partial = await personValues(store, 'a');
      expect(partial).toHaveLength(N);
      expect(countOf(partial, 1)).toBeGreaterThan(0);

      // The fixed file, in an app of its own: a file once loaded is not loaded again from the same path.
      const fixedText = `
import { defineMigration, MapFunctionOnEntities } from 'datastore-migrate';
export default defineMigration({ operations: [new MapFunctionOnEntities('Person', (p) => void p.set('fixed', true), { batchSize: 25, shardCount: 2 })] });
`;
      const fixed = await graphOf(tempApp({ 'migrations/0001_a.ts': fixedText }));
      const worker = await workerFor(store, fixed);
      await expect(start(store, fixed, worker)).rejects.toThrow('--restart default:0001_a');
      expect(await Lease.holder(store, '')).toBeUndefined();

      const started = await start(store, fixed, worker, { restart: ['0001_a'] });
      expect(started).toMatchObject({ restarted: ['default:0001_a'], migrations: ['default:0001_a'] });
      expect((await waitForRun(store, started.run!.id, RUN_MS)).status).toBe('done');
      const fixedValues = await personValues(store, 'fixed');
      expect(fixedValues).toHaveLength(N);
      expect(countOf(fixedValues, 1)).toBe(N);
      // What the broken run changed stays changed, as --restart says.
      expect(await personValues(store, 'a')).toEqual(partial);
      expect(await new Recorder(store, '').get('default:0001_a')).toMatchObject({ state: 'applied', checksum: fixed.ordered[0].checksum });
    },
    RUN_MS * 3,
  );
});
