import type { Datastore } from '../../src/datastore';
import { jobRef, leaseKey, migrationKey, runKey, shardKey } from '../../src/control';
import { breakLease, Lease, Recorder, resolverOf, Run, runOwner } from '../../src/migrations';
import { Pipeline, startRun } from '../../src/executors/cloud-tasks';
import { jobTotals } from '../../src/sharding';
import type { RunningWorker } from '../../src/worker';
import { tempApp } from '../support/cli';
import { counterValues, graphOf, INCREMENT_MIGRATION, inProcessWorker, runThroughTasks, SECRET, seedCounters, singleFlavour, startTasks, type TasksHarness, waitForRun } from './support/harness';

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

  test('whose lock is broken stops; the next run takes over and resumes each shard from the slice it was handed on to, leaving exactly +1', async () => {
    const fresh = await connect();
    await seedCounters(fresh, 300);
    const graph = await graphOf(tempApp({ 'migrations/0001_slow.ts': SLOW_INCREMENT }));
    const worker = await inProcessWorker(h, fresh, graph);
    workers.push(worker);
    const first = (await startRun({ store: fresh, graph, tasks: h.tasks, settings: h.dispatch(worker.url) })).run!;
    expect((await Lease.holder(fresh, ''))?.owner).toBe(runOwner(first.id));
    const opRun = jobRef('', 'default:0001_slow', 0, 0);
    // Once each shard handed itself on to a later slice than its first: the next run must go on from there.
    const handedOn = async () => {
      const shards = await fresh.lookup([shardKey(opRun, 0), shardKey(opRun, 1)]);
      return shards.every((s) => s && (s.get('done') === true || Number(s.get('slices')) >= 2)) && shards.some((s) => s?.get('done') !== true);
    };
    while (!(await handedOn())) await new Promise((r) => setTimeout(r, 20));

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

  test('a task arriving after its run lost the lease changes no record and no run state, through the pipeline or the run itself', async () => {
    const store = await connect();
    await seedCounters(store, 300);
    const graph = await graphOf(tempApp({ 'migrations/0001_slow.ts': SLOW_INCREMENT }));
    const worker = await inProcessWorker(h, store, graph);
    workers.push(worker);
    const started = (await startRun({ store, graph, tasks: h.tasks, settings: h.dispatch(worker.url) })).run!;
    const job = jobRef('', 'default:0001_slow', 0, 0);
    while (((await jobTotals(store, job))?.scanned ?? 0) < 40) await new Promise((r) => setTimeout(r, 50));

    // Another process takes the lease, as after the run's lease lapsed; the run is not told.
    await store.delete([leaseKey('')]);
    await new Lease(store, '', 'other-host:1:abc', 60_000).acquire('migrate');
    // Tasks already past their lease check finish their slice (at most one budget) and write no transition.
    await new Promise((r) => setTimeout(r, 1000));
    const raw = async () => ({ run: (await store.get(runKey('', started.id)))?.toObject(), record: (await store.get(migrationKey('', 'default:0001_slow')))?.toObject() });
    const before = await raw();
    expect(before.run).toMatchObject({ status: 'running' });

    const pipeline = new Pipeline({ store, graph, tasks: h.tasks, secret: SECRET });
    expect(await pipeline.run({ v: 2, type: 'start', ns: '', run: started.id, migration: 'default:0001_slow', step: 0, page: 0 })).toMatchObject({ result: 'stale' });
    expect(await pipeline.run({ v: 2, type: 'slice', ns: '', run: started.id, migration: 'default:0001_slow', step: 0, shard: 0, slice: 9 })).toMatchObject({ result: 'stale' });
    // Past the pipeline's own check: each transition checks the lease in its transaction.
    const run = (await Run.load(store, '', started.id, resolverOf(graph)))!;
    const zero = { scanned: 0, changed: 0, deleted: 0, skipped: 0, failed: 0, shardsDone: 0, shardsTotal: 0 };
    await expect(run.complete(zero)).rejects.toMatchObject({ code: 'LEASE_LOST' });
    await expect(run.waitOn('a late failure')).rejects.toMatchObject({ code: 'LEASE_LOST' });
    await expect(run.recordShards(99, 1)).rejects.toMatchObject({ code: 'LEASE_LOST' });
    await expect(run.fail(new Error('a late failure'))).rejects.toMatchObject({ code: 'LEASE_LOST' });
    expect(await raw()).toEqual(before);
    expect((await Lease.holder(store, ''))?.owner).toBe('other-host:1:abc');
  });
});
