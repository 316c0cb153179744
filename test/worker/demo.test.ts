import path from 'node:path';
import { Entity, Key, type Datastore } from '../../src/datastore';
import { LocalExecutor } from '../../src/executors';
import { loadGraph, migrate, operationsDone, Recorder, type MigrationRecord } from '../../src/migrations';
import type { RunningWorker } from '../../src/worker';
import { inProcessWorker, runThroughTasks, singleFlavour, snapshot, startTasks, type TasksHarness } from './support/harness';

const MIGRATIONS = path.resolve(__dirname, '../../migrations');
const KINDS = ['Person', 'Company', 'PersonArchive', 'LegacyLog'];
const NAMESPACES = ['', 'tenant-b'];

/** The demo's data in its old shape (as demo/run.ts seeds it, smaller). */
async function seed(store: Datastore): Promise<void> {
  const companies = ['acme', 'globex', 'initech'];
  const people = Array.from({ length: 450 }, (_, n) => {
    const i = n + 1;
    const key = i % 3 === 0 ? Key.of('Company', companies[i % 3], 'Person', i) : i % 3 === 1 ? Key.of('Person', i) : Key.of('Person', `user-${i}`);
    const values: Record<string, string | number> = { name: `Person ${i}`, email: `Person.${i}@Example.COM`, nickname: `p${i}`, visits: i % 7 };
    if (i % 10 === 0) values.colour = 'green';
    return Entity.from(key, { ...values, bio: 'x'.repeat(600) }, { excludeFromIndexes: ['bio'] });
  });
  const logs = Array.from({ length: 120 }, (_, i) => Entity.from(Key.of('LegacyLog', i + 1), { line: `log ${i}` }));
  await store.save([...companies.map((c) => Entity.from(Key.of('Company', c), { name: c.toUpperCase() })), ...people, ...logs]);
}

const recordsOf = async (store: Datastore) =>
  [...(await new Recorder(store, '').list()).values()].map((r: MigrationRecord) => ({
    id: r.id,
    state: r.state,
    operationsDone: operationsDone(r),
    operations: r.operations.map((op) => ({ ...op, applied: op.applied.toJSON() })),
    direction: r.direction,
  }));

describe("the demo's migrations", () => {
  const local = singleFlavour('firestore', 'demo-local');
  const tasks = singleFlavour('firestore', 'demo-tasks');
  let h: TasksHarness;
  let worker: RunningWorker;
  let a: Datastore;
  let b: Datastore;

  beforeAll(async () => {
    h = await startTasks();
    [a, b] = await Promise.all([local.connect(), tasks.connect()]);
    await Promise.all([seed(a), seed(b)]);
  });
  afterAll(async () => {
    await worker?.stop();
    await h.close();
    await Promise.all([a.close(), b.close()]);
  });

  test('through Cloud Tasks and a worker leave data and records identical to the local executor', async () => {
    const graph = await loadGraph([{ app: 'default', dir: MIGRATIONS }]);
    expect(graph.ordered.length).toBeGreaterThanOrEqual(7);
    await migrate({ store: a, graph, executor: new LocalExecutor() });
    worker = await inProcessWorker(h, b, graph);
    const { run } = await runThroughTasks(h, b, graph, worker.url, { dispatch: { sliceBudgetMs: 500 } });
    expect(run?.status).toBe('done');

    const [expected, actual] = await Promise.all([snapshot(a, KINDS, NAMESPACES), snapshot(b, KINDS, NAMESPACES)]);
    expect(Object.keys(actual).length).toBeGreaterThan(900); // people, their archive and the tenant's copies
    expect(actual).toEqual(expected);
    expect(await recordsOf(b)).toEqual(await recordsOf(a));
  });
});
