import type { Datastore } from '../../src/datastore';
import { jobRef } from '../../src/control';
import { breakLease, Lease, Recorder, runOwner } from '../../src/migrations';
import { shardedEngine, startRun } from '../../src/executors/cloud-tasks';
import type { RunningWorker } from '../../src/worker';
import { tempApp } from '../support/cli';
import { counterValues, graphOf, INCREMENT_MIGRATION, inProcessWorker, runThroughTasks, seedCounters, singleFlavour, startTasks, type TasksHarness, waitForRun } from './support/harness';

const SLOW_INCREMENT = INCREMENT_MIGRATION('{ shardCount: 2, batchSize: 20 }', 3);

const THROWS_ON_C7 = `
import { defineMigration, MapFunctionOnEntities } from 'datastore-migrate';
export default defineMigration({
  operations: [
    new MapFunctionOnEntities('Counter', (c) => {
      if (c.key.name === 'c-7') throw new Error('cannot handle c-7');
      c.set('n', 1);
    }, { batchSize: 10 }),
  ],
});
`;

describe('a run through Cloud Tasks', () => {
  let h: TasksHarness;
  const opened: Datastore[] = [];
  const workers: RunningWorker[] = [];
  /** A project of its own per test. */
  const connect = async () => (opened.push(await singleFlavour('firestore', 'life').connect()), opened.at(-1)!);

  beforeAll(async () => {
    h = await startTasks();
  });
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await h.close();
    await Promise.all(opened.map((s) => s.close()));
  });

  test('that fails records the migration failed with the key, stops, and frees the lock', async () => {
    const store = await connect();
    await seedCounters(store, 60, 'Counter');
    const graph = await graphOf(tempApp({ 'migrations/0001_throws.ts': THROWS_ON_C7 }));
    const worker = await inProcessWorker(h, store, graph);
    workers.push(worker);
    const { run } = await runThroughTasks(h, store, graph, worker.url);
    expect(run).toMatchObject({ status: 'failed', error: expect.stringMatching(/at key .*c-7.*cannot handle c-7/) });
    expect(await new Recorder(store, '').get('default:0001_throws')).toMatchObject({ state: 'failed', error: expect.stringContaining('cannot handle c-7') });
    expect(await Lease.holder(store, '')).toBeUndefined();
  });

  test('whose lock is broken stops; the next run takes over and resumes, leaving exactly +1', async () => {
    const fresh = await connect();
    await seedCounters(fresh, 300);
    const graph = await graphOf(tempApp({ 'migrations/0001_slow.ts': SLOW_INCREMENT }));
    const worker = await inProcessWorker(h, fresh, graph);
    workers.push(worker);
    const first = (await startRun({ store: fresh, graph, tasks: h.tasks, settings: h.dispatch(worker.url) })).run!;
    expect((await Lease.holder(fresh, ''))?.owner).toBe(runOwner(first.id));
    const opRun = jobRef('', 'default:0001_slow', 0, 0);
    while (((await shardedEngine.totals(fresh, opRun))?.scanned ?? 0) < 40) await new Promise((r) => setTimeout(r, 50));

    await breakLease(fresh, ''); // `dsmigrate unlock`
    expect((await waitForRun(fresh, first.id)).status).toBe('abandoned');
    const record = await new Recorder(fresh, '').get('default:0001_slow');
    expect(record?.state).toBe('running');
    expect(await Lease.holder(fresh, '')).toBeUndefined();

    const { run: second, started } = await runThroughTasks(h, fresh, graph, worker.url);
    expect(started.run?.migrations).toEqual([expect.objectContaining({ id: 'default:0001_slow', steps: [0] })]);
    expect(second?.status).toBe('done');
    const values = await counterValues(fresh);
    expect(values).toHaveLength(300);
    expect(values.filter((v) => v !== 1)).toEqual([]);
  });
});
