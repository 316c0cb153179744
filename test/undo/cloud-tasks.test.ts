import { Key, type Datastore } from '../../src/datastore';
import type { MigrationGraph } from '../../src/migrations';
import type { RunningWorker } from '../../src/worker';
import { tempApp } from '../support/cli';
import { describeEachFlavour, uniqueProject } from '../support/emulators';
import { startRun } from '../../src/executors/cloud-tasks';
import type { UndoConflicts } from '../../src/operations';
import { graphOf, inProcessWorker, RECOVERY_FAULTS, runThroughTasks, startTasks, waitForRun, type TasksHarness } from '../worker/support/harness';
import { images, migrationFile, rawSeed, rawSnapshot, richKeys, SEED } from './support';

const N = 40;
const RUN_MS = 120_000;

const CASES: [string, string, string][] = [
  ['DeleteModelData', 'DeleteModelData', "new DeleteModelData('Rich', { undo: true, batchSize: 8 })"],
  ['RemoveFieldData', 'RemoveFieldData', "new RemoveFieldData('Rich', 'nested', { undo: true, batchSize: 8 })"],
  ['a MapFunctionOnEntities without a reverse', 'MapFunctionOnEntities', "new MapFunctionOnEntities('Rich', (e) => { e.set('keep', 'mapped'); e.delete('big'); }, { undo: true, batchSize: 8 })"],
  ['a CopyModelData that overwrote', 'CopyModelData', "new CopyModelData('Rich', 'Target', { overwriteExisting: true, undo: true, batchSize: 8 })"],
];

/** The forward run and the back-out through the Cloud Tasks driver, with failed, duplicated, overlapping and unanswered dispatches. */
describeEachFlavour('undo from before-images through Cloud Tasks under faults', (ctx) => {
  let h: TasksHarness;
  const workers: RunningWorker[] = [];

  beforeAll(async () => {
    h = await startTasks({ seed: 22, ...RECOVERY_FAULTS });
  });
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await h.close();
  });

  async function workerFor(store: Datastore, graph: MigrationGraph): Promise<RunningWorker> {
    const own = await ctx.connect({ projectId: store.projectId });
    const worker = await inProcessWorker(h, own, graph);
    workers.push(worker);
    return worker;
  }

  test.each(CASES)(
    '%s, applied then backed out, leaves every entity as it was, at the protobuf level',
    async (_, imports, operation) => {
      const projectId = uniqueProject('uct');
      const store = await ctx.connect({ projectId });
      await rawSeed(ctx, projectId, richKeys('Rich', N));
      await rawSeed(
        ctx,
        projectId,
        richKeys('Target', N).filter((_k, i) => i % 2 === 0),
        { ...SEED, keep: { stringValue: 'the target as it was' } },
      );
      const before = await rawSnapshot(ctx, projectId, ['Rich', 'Target']);
      const graph = await graphOf(tempApp({ 'migrations/0001_change.ts': migrationFile(imports, operation) }));
      const worker = await workerFor(store, graph);

      const { run: forward } = await runThroughTasks(h, store, graph, worker.url, { timeoutMs: RUN_MS });
      expect(forward).toMatchObject({ status: 'done' });
      expect(await rawSnapshot(ctx, projectId, ['Rich', 'Target'])).not.toEqual(before);
      expect((await images(store)).length).toBe(N);

      const { run: back } = await runThroughTasks(h, store, graph, worker.url, { target: 'zero', timeoutMs: RUN_MS });
      expect(back).toMatchObject({ status: 'done' });
      expect(await rawSnapshot(ctx, projectId, ['Rich', 'Target'])).toEqual(before);
      expect((await images(store)).every((i) => i.restoredAt)).toBe(true);
    },
    RUN_MS * 2,
  );

  /** A RemoveFieldData kept with undo, applied through the worker, then Rich:6 written again by the application. */
  async function changedSinceApplied(prefix: string) {
    const projectId = uniqueProject(prefix);
    const store = await ctx.connect({ projectId });
    await rawSeed(ctx, projectId, richKeys('Rich', N));
    const before = await rawSnapshot(ctx, projectId, ['Rich']);
    const graph = await graphOf(tempApp({ 'migrations/0001_change.ts': migrationFile('RemoveFieldData', "new RemoveFieldData('Rich', 'keep', { undo: true, batchSize: 8 })") }));
    const worker = await workerFor(store, graph);
    expect((await runThroughTasks(h, store, graph, worker.url, { timeoutMs: RUN_MS })).run).toMatchObject({ status: 'done' });
    const entity = (await store.get(Key.of('Rich', 6)))!;
    entity.set('keep', 'the application wrote this');
    await store.save([entity]);
    return { projectId, store, graph, worker, before, written: await rawSnapshot(ctx, projectId, ['Rich']) };
  }

  test(
    'an entity the application changed since: the back-out fails naming it and changes nothing',
    async () => {
      const { projectId, store, graph, worker, written } = await changedSinceApplied('uctc');

      const { run } = await runThroughTasks(h, store, graph, worker.url, { target: 'zero', timeoutMs: RUN_MS });
      expect(run).toMatchObject({ status: 'failed', error: expect.stringMatching(/1 entity was changed since it ran \(e\.g\. Rich:6\).*Nothing was changed/) });
      expect(await rawSnapshot(ctx, projectId, ['Rich'])).toEqual(written);
    },
    RUN_MS * 2,
  );

  test.each<[UndoConflicts, string]>([
    ['overwrite', 'restores it as it was before the operation'],
    ['skip', 'leaves it as the application wrote it and restores the rest'],
  ])(
    'an entity the application changed since, with --undo-conflicts %s: the worker %s',
    async (policy) => {
      const { projectId, store, graph, worker, before, written } = await changedSinceApplied('uctp');

      // The policy goes with the run's request; the worker makes the back-out step from the stored run.
      const started = await startRun({ store, graph, tasks: h.tasks, settings: h.dispatch(worker.url), target: 'zero', undoConflicts: policy });
      expect(started.run).toMatchObject({ undoConflicts: policy });
      expect(await waitForRun(store, started.run!.id, RUN_MS)).toMatchObject({ status: 'done' });
      const after = await rawSnapshot(ctx, projectId, ['Rich']);
      const name = Object.keys(after).find((k) => k.includes('["Rich","6"]'))!;
      if (policy === 'overwrite') expect(after).toEqual(before);
      else {
        expect(after[name]).toEqual(written[name]);
        expect({ ...after, [name]: undefined }).toEqual({ ...before, [name]: undefined });
      }
      expect((await images(store)).filter((i) => !i.restoredAt).length).toBe(policy === 'skip' ? 1 : 0);
    },
    RUN_MS * 2,
  );
});
