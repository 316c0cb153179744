import { Key, type Datastore } from '../../src/datastore';
import { Recorder } from '../../src/migrations';
import type { RunningWorker } from '../../src/worker';
import { tempApp } from '../support/cli';
import { describeEachFlavour, uniqueProject } from '../support/emulators';
import { countOf, graphOf, incrementOp, inProcessWorker, personValues, RECOVERY_FAULTS, runThroughTasks, seedPeople, startTasks, type TasksHarness } from './support/harness';

/**
 * A RunFunction step through `--executor cloud-tasks`, with every dispatch fault of the emulator on
 * (failed, duplicated, overlapping and unanswered deliveries): it runs in its start task, at least once,
 * and its idempotent function leaves exactly one effect, both ways.
 */
const N = 120;
const RUN_MS = 120_000;

const MIGRATION = `
import { defineMigration, Entity, Key, MapFunctionOnEntities, RunFunction } from 'datastore-migrate';

const settings = Key.of('Settings', 'main');
const calls = Key.of('FnCalls', 'seed');

export default defineMigration({
  operations: [
    new RunFunction(
      async ({ store }) => {
        await store.transaction(async (tx) => {
          const seen = await tx.get(calls);
          tx.upsert(Entity.from(calls, { n: Number(seen?.get('n') ?? 0) + 1 }));
        });
        return store.transaction(async (tx) => {
          if (await tx.get(settings)) return 0;
          tx.insert(Entity.from(settings, { theme: 'dark', version: 1 }));
          return 1;
        });
      },
      { description: 'Create the default Settings', reverse: async ({ store }) => store.delete([settings]) },
    ),
    ${incrementOp('a', '{ batchSize: 20, shardCount: 3 }')},
  ],
});
`;

describeEachFlavour('RunFunction through Cloud Tasks under faults', (ctx) => {
  let h: TasksHarness;
  const workers: RunningWorker[] = [];
  beforeAll(async () => {
    h = await startTasks({ seed: 31, ...RECOVERY_FAULTS });
  });
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await h.close();
  });

  const settings = (store: Datastore) => store.get(Key.of('Settings', 'main'));

  it('runs the function in its start task, then the data step, and backs both out exactly', async () => {
    const store = await ctx.connect({ projectId: uniqueProject('fnct') });
    await seedPeople(store, N);
    const graph = await graphOf(tempApp({ 'migrations/0001_seed.ts': MIGRATION }));
    const worker = await inProcessWorker(h, store, graph);
    workers.push(worker);

    const { run } = await runThroughTasks(h, store, graph, worker.url, { timeoutMs: RUN_MS });
    expect(run?.status).toBe('done');
    expect((await settings(store))?.toObject()).toEqual({ theme: 'dark', version: 1 });
    // At least once: a delivery may run it again, and its marker keeps its effect single.
    expect(Number((await store.get(Key.of('FnCalls', 'seed')))?.get('n'))).toBeGreaterThanOrEqual(1);
    const a = await personValues(store, 'a');
    expect(a).toHaveLength(N);
    expect(countOf(a, 1)).toBe(N);
    expect((await new Recorder(store, '').get('default:0001_seed'))?.state).toBe('applied');
    expect(run?.migrations[0].counts[0]).toMatchObject({ shardsDone: 1, shardsTotal: 1 });

    const { run: back } = await runThroughTasks(h, store, graph, worker.url, { target: 'zero', timeoutMs: RUN_MS });
    expect(back?.status).toBe('done');
    expect(await settings(store)).toBeUndefined();
    const after = await personValues(store, 'a');
    expect(after).toHaveLength(N);
    expect(countOf(after, 0)).toBe(N);
    expect(await new Recorder(store, '').get('default:0001_seed')).toBeUndefined();
  });
});
