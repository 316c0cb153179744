import type { Datastore } from '../../src/datastore';
import { startRun } from '../../src/executors/cloud-tasks';
import { buildGraph, Lease, Recorder } from '../../src/migrations';
import type { RunningWorker } from '../../src/worker';
import { tempApp } from '../support/cli';
import { counterValues, graphOf, INCREMENT_MIGRATION, inProcessWorker, seedCounters, singleFlavour, startTasks, type TasksHarness, waitForRun } from './support/harness';

/**
 * A worker deployed without the run's migration file: its tasks are retried (a rolling deploy heals by
 * itself) up to cloudTasks.maxStepAttempts, then the migration fails, by its id, with the reason; a run
 * started once the worker has the file resumes it.
 */
describe('a worker without the run’s migration file', () => {
  const ctx = singleFlavour('firestore', 'dep');
  const stores: Datastore[] = [];
  const workers: RunningWorker[] = [];
  let h: TasksHarness;
  const connect = async () => {
    stores.push(await ctx.connect());
    return stores.at(-1)!;
  };

  beforeAll(async () => {
    h = await startTasks();
  });
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await h.close();
    await Promise.all(stores.map((s) => s.close()));
  });

  test('is retried up to maxStepAttempts, then fails the migration with the reason; a run on a worker with the file resumes it', async () => {
    const store = await connect();
    await seedCounters(store, 30);
    const graph = await graphOf(tempApp({ 'migrations/0001_increment.ts': INCREMENT_MIGRATION() }));
    const stale = await inProcessWorker(h, await connect(), buildGraph([]));
    workers.push(stale);

    const { run } = await startRun({ store, graph, tasks: h.tasks, settings: h.dispatch(stale.url, { maxStepAttempts: 3 }) });
    const failed = await waitForRun(store, run!.id);
    expect(failed.status).toBe('failed');
    expect(failed.error).toContain("default:0001_increment is not among this process's migration files");
    expect(failed.error).toContain('the step failed 3 times');
    expect(await new Recorder(store, '').get('default:0001_increment')).toMatchObject({ state: 'failed' });
    expect(await Lease.holder(store, '')).toBeUndefined();
    expect(new Set(await counterValues(store))).toEqual(new Set([0]));

    const deployed = await inProcessWorker(h, await connect(), graph);
    workers.push(deployed);
    const { run: again } = await startRun({ store, graph, tasks: h.tasks, settings: h.dispatch(deployed.url) });
    expect((await waitForRun(store, again!.id)).status).toBe('done');
    const values = await counterValues(store);
    expect(values).toHaveLength(30);
    expect(new Set(values)).toEqual(new Set([1]));
  }, 120_000);
});
