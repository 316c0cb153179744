import type { Datastore } from '../../src/datastore';
import { Pipeline, startRun, taskIdFor, type SlicePayload } from '../../src/executors/cloud-tasks';
import { loadRun, type RunState } from '../../src/migrations';
import { loadLayout, loadShardStates, type ShardState } from '../../src/sharding';
import { tempApp } from '../support/cli';
import type { RunningWorker } from '../../src/worker';
import { counterValues, graphOf, INCREMENT_MIGRATION, inProcessWorker, SECRET, seedCounters, singleFlavour, startTasks, waitForRun, type TasksHarness } from './support/harness';

const N = 120;

/**
 * A shard's slices form one chain: its checkpoint names the next slice, and only that one runs. The
 * tasks here are run through the pipeline by the test, one at a time, while the queue is paused; then
 * the queue runs the rest. One shard, ten entities a batch at 5 ms each, 150 ms a slice: several slices.
 */
describe("a shard's slices", () => {
  const ctx = singleFlavour('firestore', 'chain');
  let h: TasksHarness;
  let store: Datastore;
  let worker: RunningWorker;
  let run: RunState;
  let pipeline: Pipeline;
  let created: jest.SpyInstance;
  const slice = (n: number): SlicePayload => ({ v: 2, type: 'slice', ns: '', run: run.id, migration: run.migrations[0].id, step: 0, shard: 0, slice: n });
  const sentNames = (): string[] => created.mock.calls.map(([request]: [{ task: { name: string } }]) => request.task.name);
  const nameOf = (n: number): string => `${h.queue.name}/tasks/${taskIdFor(slice(n))}`;

  async function checkpoint(): Promise<ShardState> {
    const { job } = (await loadRun(store, '', run.id))!;
    const layout = await loadLayout(store, { namespace: '', id: job! });
    return (await loadShardStates(store, layout!))[0];
  }

  beforeAll(async () => {
    h = await startTasks();
    store = await ctx.connect();
    await seedCounters(store, N);
    const graph = await graphOf(tempApp({ 'migrations/0001_increment.ts': INCREMENT_MIGRATION('{ shardCount: 1, batchSize: 10 }', 5) }));
    await h.tasks.createQueue({ parent: `projects/${h.queue.project}/locations/${h.queue.location}`, queue: { name: h.queue.name } });
    await h.tasks.pauseQueue({ name: h.queue.name });
    // The queue's worker: it serves the run once the queue is resumed.
    worker = await inProcessWorker(h, store, graph);
    run = (await startRun({ store, graph, tasks: h.tasks, settings: h.dispatch(worker.url) })).run!;
    created = jest.spyOn(h.tasks, 'createTask');
    pipeline = new Pipeline({ store, graph, tasks: h.tasks, secret: SECRET });
    expect(await pipeline.run({ v: 2, type: 'start', ns: '', run: run.id, migration: run.migrations[0].id, step: 0, page: 0 })).toMatchObject({ result: 'done' });
  });
  afterAll(async () => {
    await worker.stop();
    await h.close();
    await store.close();
  });

  test('the first is 0; one that stops with more to do makes the next one due, then sends it', async () => {
    expect((await checkpoint()).slices).toBe(0);
    created.mockClear();
    expect(await pipeline.run(slice(0))).toMatchObject({ result: 'done', detail: expect.stringMatching(/continues/) });
    const after = await checkpoint();
    expect(after).toMatchObject({ slices: 1, done: false });
    expect(after.counts.scanned).toBeGreaterThan(0);
    expect(after.counts.scanned).toBeLessThan(N);
    expect(sentNames()).toEqual([nameOf(1)]);
  });

  test('a slice that is not the next one runs nothing and sends nothing: no second chain', async () => {
    const before = { values: await counterValues(store), checkpoint: await checkpoint() };
    created.mockClear();
    for (const n of [2, 5, 1000]) {
      expect(await pipeline.run(slice(n))).toEqual({ result: 'stale', detail: `shard 0 is at slice 1, not ${n}` });
    }
    expect(sentNames()).toEqual([]);
    expect({ values: await counterValues(store), checkpoint: await checkpoint() }).toEqual(before);
  });

  test('a redelivery of the slice before the next one runs nothing, and sends the next one again (it may have stopped before sending it)', async () => {
    const before = { values: await counterValues(store), checkpoint: await checkpoint() };
    created.mockClear();
    expect(await pipeline.run(slice(0))).toEqual({ result: 'stale', detail: 'shard 0 is at slice 1, not 0' });
    expect(sentNames()).toEqual([nameOf(1)]);
    expect({ values: await counterValues(store), checkpoint: await checkpoint() }).toEqual(before);
  });

  test("a start task of a page that is not the step's next lays out nothing; the page before sends the next one again", async () => {
    const start = (page: number) => ({ v: 2 as const, type: 'start' as const, ns: '', run: run.id, migration: run.migrations[0].id, step: 0, page });
    const before = { run: await loadRun(store, '', run.id), values: await counterValues(store) };
    expect(before.run?.page).toBe(1);
    created.mockClear();
    for (const page of [2, 7]) expect(await pipeline.run(start(page))).toMatchObject({ result: 'stale', detail: expect.stringMatching(`start page ${page} .* is not its next one \\(1\\)`) });
    expect(sentNames()).toEqual([]);
    expect(await pipeline.run(start(0))).toMatchObject({ result: 'stale' });
    expect(sentNames()).toEqual([`${h.queue.name}/tasks/${taskIdFor(start(1))}`]);
    expect({ run: await loadRun(store, '', run.id), values: await counterValues(store) }).toEqual(before);
  });

  test('the queue then runs the one chain to the end: every entity +1 exactly', async () => {
    await h.tasks.resumeQueue({ name: h.queue.name });
    expect((await waitForRun(store, run.id)).status).toBe('done');
    const values = await counterValues(store);
    expect(values).toHaveLength(N);
    expect(new Set(values)).toEqual(new Set([1]));
  });
});
