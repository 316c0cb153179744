import { operationsDone, Recorder } from '../../src/migrations';
import { tempApp } from '../support/cli';
import { describeEachFlavour } from '../support/emulators';
import { counterValues, graphOf, inProcessWorker, INCREMENT_MIGRATION, runThroughTasks, seedCounters, startTasks, TAG_MIGRATION, type TasksHarness } from './support/harness';

describeEachFlavour('increment through Cloud Tasks under faults', (ctx) => {
  let h: TasksHarness;
  beforeAll(async () => {
    h = await startTasks({ seed: 7 });
  });
  afterAll(() => h.close());

  test('20% failed dispatches and 10% duplicates still leave exactly +1, and records say applied', async () => {
    const store = await ctx.connect();
    const n = 900;
    await seedCounters(store, n);
    // 48 shards make 60 dispatches or more, so that 10% duplicates do happen (with 3 shards there were
    // about 19, and a run could see none).
    const dir = tempApp({ 'migrations/0001_increment.ts': INCREMENT_MIGRATION('{ shardCount: 48, batchSize: 40 }'), 'migrations/0002_tag.ts': TAG_MIGRATION });
    const graph = await graphOf(dir);
    const worker = await inProcessWorker(h, store, graph);
    h.emulator.setFaults({ failFraction: 0.2, duplicateFraction: 0.1, seed: 11 });
    try {
      const { run } = await runThroughTasks(h, store, graph, worker.url);
      expect(run?.status).toBe('done');
      const values = await counterValues(store);
      expect(values).toHaveLength(n);
      expect(values.every((v) => v === 1)).toBe(true);
      const records = await new Recorder(store, '').list();
      const increment = records.get('default:0001_increment')!;
      expect(increment).toMatchObject({ state: 'applied' });
      expect(operationsDone(increment)).toBe(1);
      expect(increment.operations[0]).toMatchObject({ scanned: n, changed: n });
      expect(increment.operations[0].applied.isAll).toBe(true);
      expect(records.get('default:0002_tag')).toMatchObject({ state: 'applied' });
      const stats = h.emulator.stats();
      expect(stats.injectedFailures).toBeGreaterThan(0);
      expect(stats.duplicates).toBeGreaterThan(0);
    } finally {
      h.emulator.setFaults({ failFraction: 0, duplicateFraction: 0 });
      await worker.stop();
    }
  });
});
