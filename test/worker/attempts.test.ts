import type { Datastore } from '../../src/datastore';
import { encodePayload, signBody, SIGNATURE_HEADER, startRun, type StartPayload } from '../../src/executors/cloud-tasks';
import { buildGraph, loadRun, type RunState } from '../../src/migrations';
import type { RunningWorker } from '../../src/worker';
import { tempApp } from '../support/cli';
import { graphOf, INCREMENT_MIGRATION, inProcessWorker, SECRET, singleFlavour, startTasks, type TasksHarness } from './support/harness';

/**
 * A step's failed attempts are counted by the run, in Datastore: Cloud Tasks' X-CloudTasks-TaskRetryCount
 * header is covered by no signature, so a replayed request that claimed 999 retries would otherwise fail
 * a migration on its first transient error. The tasks here are only those the test posts: the queue is paused.
 */
describe("a step's failed attempts", () => {
  const ctx = singleFlavour('firestore', 'att');
  const workers: RunningWorker[] = [];
  let h: TasksHarness;
  let store: Datastore;

  beforeAll(async () => {
    h = await startTasks();
    store = await ctx.connect();
    await h.tasks.createQueue({ parent: `projects/${h.queue.project}/locations/${h.queue.location}`, queue: { name: h.queue.name } });
    await h.tasks.pauseQueue({ name: h.queue.name });
  });
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await h.close();
    await store.close();
  });

  /** A run of one increment, namespaced so that each test has its own lease, and a worker without its migration file. */
  async function stuckRun(namespace: string): Promise<{ run: RunState; post: (headers?: Record<string, string>, signed?: boolean) => Promise<{ status: number; body: unknown }> }> {
    const graph = await graphOf(tempApp({ 'migrations/0001_increment.ts': INCREMENT_MIGRATION() }));
    const stale = await inProcessWorker(h, store, buildGraph([]));
    workers.push(stale);
    const { run } = await startRun({ store, graph, tasks: h.tasks, settings: h.dispatch(stale.url, { maxStepAttempts: 3 }), controlNamespace: namespace });
    const task: StartPayload = { v: 2, type: 'start', ns: namespace, run: run!.id, migration: run!.migrations[0].id, step: 0, page: 0 };
    const body = encodePayload(task);
    const post = async (headers: Record<string, string> = {}, signed = true) => {
      const response = await fetch(stale.url, { method: 'POST', body, headers: { ...headers, ...(signed ? { [SIGNATURE_HEADER]: signBody(SECRET, body) } : {}) } });
      return { status: response.status, body: await response.json() };
    };
    return { run: run!, post };
  }

  test('are counted on the run, whatever the request says; the run fails once they reach maxStepAttempts', async () => {
    const { run, post } = await stuckRun('count');
    const stored = () => loadRun(store, 'count', run.id);

    expect((await post({ 'X-CloudTasks-TaskRetryCount': '999' })).status).toBe(500);
    expect(await stored()).toMatchObject({ status: 'running', waiting: { attempts: 1, reason: expect.stringMatching(/not among this process's migration files/) } });
    // Unauthenticated, it counts for nothing.
    expect((await post({ 'X-CloudTasks-TaskRetryCount': '999' }, false)).status).toBe(401);
    expect((await stored())?.waiting?.attempts).toBe(1);

    expect((await post({ 'X-CloudTasks-TaskRetryCount': '0' })).status).toBe(500);
    expect(await stored()).toMatchObject({ status: 'running', waiting: { attempts: 2 } });

    expect(await post()).toEqual({ status: 200, body: expect.objectContaining({ result: 'failed' }) });
    expect(await stored()).toMatchObject({
      status: 'failed',
      errorCode: 'STEP_ATTEMPTS_SPENT',
      error: expect.stringMatching(/not among this process's migration files.*\(the step failed 3 times; cloudTasks\.maxStepAttempts is 3\)$/s),
    });
  });

  test('start again from none once the step starts its job', async () => {
    const { run, post } = await stuckRun('reset');
    expect((await post()).status).toBe(500);
    expect((await post()).status).toBe(500);
    expect((await loadRun(store, 'reset', run.id))?.waiting?.attempts).toBe(2);

    // The worker is deployed with the file: the start task lays out the step's job, and the count is gone.
    const graph = await graphOf(tempApp({ 'migrations/0001_increment.ts': INCREMENT_MIGRATION() }));
    const deployed = await inProcessWorker(h, store, graph);
    workers.push(deployed);
    const body = encodePayload({ v: 2, type: 'start', ns: 'reset', run: run.id, migration: run.migrations[0].id, step: 0, page: 0 });
    expect((await fetch(deployed.url, { method: 'POST', body, headers: { [SIGNATURE_HEADER]: signBody(SECRET, body) } })).status).toBe(200);
    const started = await loadRun(store, 'reset', run.id);
    expect(started).toMatchObject({ status: 'running', job: expect.any(String) });
    expect(started?.waiting).toBeUndefined();
  });
});
