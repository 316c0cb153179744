import type { Datastore } from '../../src/datastore';
import { jobRef } from '../../src/control';
import { Recorder } from '../../src/migrations';
import { startRun } from '../../src/executors/cloud-tasks';
import { jobTotals } from '../../src/sharding';
import { tempApp } from '../support/cli';
import { counterValues, graphOf, INCREMENT_MIGRATION, SECRET, seedCounters, singleFlavour, startTasks, type TasksHarness, waitForRun } from './support/harness';
import { freePort, spawnWorker, type WorkerProcess } from './support/worker-process';

const SLOW_INCREMENT = INCREMENT_MIGRATION('{ shardCount: 3, batchSize: 20 }', 4);

let h: TasksHarness;
let store: Datastore;
let worker: WorkerProcess | undefined;

beforeAll(async () => {
  h = await startTasks();
});
afterAll(async () => {
  await worker?.kill();
  await h.close();
  await store?.close();
});

/**
 * On the classic backend where it runs. On the Firestore-mode one (as in Firestore itself) a
 * transaction the killed process left open keeps its locks until they time out, about a minute: the
 * run finishes all the same (measured: 70 s), only later.
 */
test('a worker killed mid-run and started again finishes the run, every entity +1 exactly', async () => {
  const flavour = singleFlavour('classic', 'kill');
  store = await flavour.connect();
  const n = 600;
  await seedCounters(store, n);
  const dir = tempApp({ 'migrations/0001_slow_increment.ts': SLOW_INCREMENT });
  const graph = await graphOf(dir);
  const port = await freePort();
  const env = {
    ...flavour.env(),
    CLOUD_TASKS_EMULATOR_HOST: h.emulator.host,
    DSMIGRATE_TASKS_QUEUE: h.queue.name,
    DSMIGRATE_WORKER_SECRET: SECRET,
  };
  worker = await spawnWorker({ cwd: dir, env, port });
  const { run } = await startRun({ store, graph, tasks: h.tasks, settings: h.dispatch(`http://127.0.0.1:${port}/`, { sliceBudgetMs: 300 }) });
  const opRun = jobRef('', 'default:0001_slow_increment', 0, 0);

  // Kill it once some, but not all, of the work is committed.
  for (const started = Date.now(); ;) {
    const totals = await jobTotals(store, opRun);
    if (totals && totals.scanned >= 60) break;
    if (Date.now() - started > 20_000) throw new Error(`no progress: ${JSON.stringify(totals)}\n${worker.output()}\n${JSON.stringify(h.emulator.stats())}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  await worker.kill();
  const atKill = (await jobTotals(store, opRun))!.scanned;
  expect(atKill).toBeLessThan(n);
  // Dispatches fail (connection refused) and are retried meanwhile.
  const failuresBefore = h.emulator.stats().failures;
  await new Promise((r) => setTimeout(r, 1500));
  expect(h.emulator.stats().failures).toBeGreaterThan(failuresBefore);

  worker = await spawnWorker({ cwd: dir, env, port });
  expect((await waitForRun(store, run!.id, 150_000)).status).toBe('done');
  const values = await counterValues(store);
  expect(values).toHaveLength(n);
  expect(values.filter((v) => v !== 1)).toEqual([]);
  expect(await new Recorder(store, '').get('default:0001_slow_increment')).toMatchObject({
    state: 'applied',
    operations: [expect.objectContaining({ scanned: n, changed: n, applied: expect.objectContaining({ isAll: true }) })],
  });
  expect(await worker.stop()).toBe(0);
  worker = undefined;
}, 180_000);
