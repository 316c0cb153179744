import path from 'node:path';
import { Datastore } from '../../src/datastore';
import { loadGraph, type MigrationGraph } from '../../src/migrations';
import { useDatastoreProxy } from '../support/datastore-proxy';
import { tempApp } from '../support/cli';
import { describeEachFlavour } from '../support/emulators';
import { inProcessWorker, RECOVERY_FAULTS, runThroughTasks, startTasks, type TasksHarness } from '../worker/support/harness';
import { DOOMED, EXPECTED_COUNTS, expectEveryFault, expectSevenExact, FAST_RETRY, FAULTS, N, rawLookup, richKeys, seedRich, SEVEN_OPERATIONS } from './support';

/**
 * The seven operations through Cloud Tasks: failed, duplicated and overlapping dispatches and lost answers
 * from the Cloud Tasks emulator, and the worker's and the starter's Datastore calls through 5% faults of every kind.
 */
describeEachFlavour('the seven operations, through Cloud Tasks, under Datastore and dispatch faults', (ctx) => {
  const proxy = useDatastoreProxy(() => ctx.host, FAULTS);
  let h: TasksHarness;
  let graph: MigrationGraph;
  beforeAll(async () => {
    h = await startTasks({ ...RECOVERY_FAULTS, seed: 23 });
    graph = await loadGraph([{ app: 'default', dir: path.join(tempApp({ 'migrations/0001_seven.ts': SEVEN_OPERATIONS }), 'migrations') }]);
  });
  afterAll(() => h.close());

  it('apply exactly once, record the migration applied, and keep every other property exact', async () => {
    const keys = richKeys(N);
    await seedRich(await ctx.connect(), keys, DOOMED);
    const before = await rawLookup(ctx.host, ctx.projectId, keys);
    const store = await Datastore.connect({ emulatorHost: proxy().host, projectId: ctx.projectId, retry: FAST_RETRY });
    const worker = await inProcessWorker(h, store, graph);
    try {
      const { run } = await runThroughTasks(h, store, graph, worker.url, { timeoutMs: 100_000 });
      expect(run?.status).toBe('done');
      // What each step counted, as the run recorded it: once per entity, whatever was redelivered or retried.
      expect(run!.migrations[0].counts.map((c) => [c?.changed, c?.deleted, c?.failed])).toEqual(EXPECTED_COUNTS.map(([, changed, deleted, failed]) => [changed, deleted, failed]));
      const dispatch = h.emulator.stats();
      for (const kind of ['injectedFailures', 'lostAnswers', 'duplicates', 'overlappingDuplicates'] as const) expect(dispatch[kind]).toBeGreaterThan(0);
      await expectSevenExact(ctx.host, ctx.projectId, keys, before);
      expectEveryFault(proxy());
    } finally {
      await worker.stop();
      await store.close();
    }
  });
});
