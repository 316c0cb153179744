import { unsignedOidcToken } from '../../emulator/cloud-tasks';
import { encodePayload, signBody, SIGNATURE_HEADER, type PlanPayload } from '../../src/executors/cloud-tasks';
import { shardedEngine, startRun, startWorker, type RunningWorker, type RunState, type WorkerLogEntry } from '../../src/worker';
import { tempApp } from '../support/cli';
import type { Datastore } from '../../src/datastore';
import { LocalSigner } from './support/oidc';
import { graphOf, INCREMENT_MIGRATION, SECRET, seedCounters, singleFlavour, snapshot, startTasks, waitForRun, type TasksHarness } from './support/harness';

const ACCOUNT = 'tasks@proj.iam.gserviceaccount.com';
const AUDIENCE = 'https://worker.example/';
const CONTROL_KINDS = ['Counter', '_dsmigrate_migration', '_dsmigrate_run', '_dsmigrate_lock', '_dsmigrate_operation', '_dsmigrate_shard'];

let h: TasksHarness;
let store: Datastore;
let hmacWorker: RunningWorker;
let oidcWorker: RunningWorker;
let run: RunState;
const log: WorkerLogEntry[] = [];
const signer = new LocalSigner();

beforeAll(async () => {
  store = await singleFlavour('firestore', 'sec').connect();
  h = await startTasks();
  await seedCounters(store, 60);
  const graph = await graphOf(tempApp({ 'migrations/0001_increment.ts': INCREMENT_MIGRATION() }));
  hmacWorker = await startWorker({ store, graph, settings: h.workerSettings(), log: (e) => log.push(e) });
  oidcWorker = await startWorker({
    store,
    graph,
    settings: { auth: { kind: 'oidc', audience: AUDIENCE, allowedServiceAccounts: [ACCOUNT] }, emulatorHost: h.emulator.host, queue: h.queue },
    certs: async () => signer.certs(),
    log: (e) => log.push(e),
  });
  // A run whose first task waits in a paused queue: only our own requests reach the worker.
  await h.tasks.createQueue({ parent: `projects/${h.queue.project}/locations/${h.queue.location}`, queue: { name: h.queue.name } });
  await h.tasks.pauseQueue({ name: h.queue.name });
  run = (await startRun({ store, graph, engine: shardedEngine, tasks: h.tasks, settings: h.dispatch(hmacWorker.url) })).run!;
});

afterAll(async () => {
  await hmacWorker.stop();
  await oidcWorker.stop();
  await h.close();
  await store.close();
});

const planTask = (): PlanPayload => ({ v: 1, type: 'plan', ns: '', run: run.id, migration: run.migrations[0].id, op: 0, page: 0 });

async function post(url: string, body: Buffer | string, headers: Record<string, string> = {}): Promise<number> {
  const response = await fetch(url, { method: 'POST', body, headers: { 'Content-Type': 'application/json', ...headers } });
  await response.text();
  return response.status;
}

describe('requests that are not ours change nothing', () => {
  const body = () => encodePayload(planTask());
  test.each([
    ['unsigned', 401, () => ({})],
    ['signed with the wrong secret', 401, () => ({ [SIGNATURE_HEADER]: signBody('not-the-shared-secret!', body()) })],
    ['signed two hours ago', 401, () => ({ [SIGNATURE_HEADER]: signBody(SECRET, body(), Date.now() - 2 * 3_600_000) })],
  ])('shared secret: %s -> %i', async (_, expected, headers) => {
    const before = await snapshot(store, CONTROL_KINDS);
    expect(await post(hmacWorker.url, body(), headers())).toBe(expected);
    expect(await snapshot(store, CONTROL_KINDS)).toEqual(before);
  });

  test('shared secret: a signature for another body -> 401', async () => {
    const before = await snapshot(store, CONTROL_KINDS);
    const other = encodePayload({ ...planTask(), page: 1 });
    expect(await post(hmacWorker.url, body(), { [SIGNATURE_HEADER]: signBody(SECRET, other) })).toBe(401);
    expect(await snapshot(store, CONTROL_KINDS)).toEqual(before);
  });

  const now = () => Math.floor(Date.now() / 1000);
  test.each([
    ['no token', 401, () => undefined],
    ["the emulator's unsigned token", 401, () => unsignedOidcToken({ serviceAccountEmail: ACCOUNT, audience: AUDIENCE })],
    ['an expired token', 401, () => signer.token({ email: ACCOUNT, aud: AUDIENCE, iat: now() - 7200, exp: now() - 3600 })],
    ['a token signed by another key', 401, () => new LocalSigner(signer.kid).token({ email: ACCOUNT, aud: AUDIENCE })],
    ['a token for another audience', 403, () => signer.token({ email: ACCOUNT, aud: 'https://another-service.example/' })],
    ['a token of an account not allowed', 403, () => signer.token({ email: 'intruder@proj.iam.gserviceaccount.com', aud: AUDIENCE })],
    ['a token whose email is not verified', 403, () => signer.token({ email: ACCOUNT, aud: AUDIENCE, email_verified: false })],
  ])('OIDC: %s -> %i', async (_, expected, token) => {
    const before = await snapshot(store, CONTROL_KINDS);
    const t = token();
    expect(await post(oidcWorker.url, body(), t ? { Authorization: `Bearer ${t}` } : {})).toBe(expected);
    expect(await snapshot(store, CONTROL_KINDS)).toEqual(before);
  });

  test('OIDC: a valid token gets through (a task for no run is acknowledged without effect)', async () => {
    const before = await snapshot(store, CONTROL_KINDS);
    const stale = encodePayload({ ...planTask(), run: 'run-that-does-not-exist' });
    expect(await post(oidcWorker.url, stale, { Authorization: `Bearer ${signer.token({ email: ACCOUNT, aud: AUDIENCE })}` })).toBe(200);
    expect(await snapshot(store, CONTROL_KINDS)).toEqual(before);
  });
});

describe('malformed payloads', () => {
  test('get 400, are logged, change nothing', async () => {
    const before = await snapshot(store, CONTROL_KINDS);
    const bad = Buffer.from(JSON.stringify({ ...planTask(), op: 'all' }));
    log.length = 0;
    expect(await post(hmacWorker.url, bad, { [SIGNATURE_HEADER]: signBody(SECRET, bad) })).toBe(400);
    expect(log).toContainEqual(expect.objectContaining({ severity: 'ERROR', status: 400, message: expect.stringMatching(/Malformed task payload: "op"/) }));
    expect(await snapshot(store, CONTROL_KINDS)).toEqual(before);
  });

  test('dispatched by Cloud Tasks, the task is deleted so that it is not retried', async () => {
    const before = await snapshot(store, CONTROL_KINDS);
    const queue = `projects/${h.queue.project}/locations/${h.queue.location}/queues/bad-tasks`;
    await h.tasks.createQueue({ parent: `projects/${h.queue.project}/locations/${h.queue.location}`, queue: { name: queue, retryConfig: { minBackoff: { nanos: 50e6 }, maxBackoff: { nanos: 50e6 } } } });
    const bad = Buffer.from('{"v":1,"type":"slice","run":"x"}');
    const dispatchesBefore = h.emulator.stats().dispatches;
    log.length = 0;
    await h.tasks.createTask({ parent: queue, task: { httpRequest: { url: hmacWorker.url, httpMethod: 'POST', body: bad, headers: { [SIGNATURE_HEADER]: signBody(SECRET, bad) } } } });
    await h.emulator.idle({ queue });
    await new Promise((r) => setTimeout(r, 300)); // a retry, if any, would be due by now
    await h.emulator.idle({ queue });
    expect(h.emulator.stats().dispatches - dispatchesBefore).toBe(1);
    expect((await h.tasks.listTasks({ parent: queue }))[0]).toHaveLength(0);
    expect(log).toContainEqual(expect.objectContaining({ status: 400, message: expect.stringMatching(/deleted task .*bad-tasks\/tasks\/.* so that it is not retried/) }));
    expect(await snapshot(store, CONTROL_KINDS)).toEqual(before);
  });
});

test('and a correctly signed task does move the run on (the requests above would have)', async () => {
  const body = encodePayload(planTask());
  expect(await post(hmacWorker.url, body, { [SIGNATURE_HEADER]: signBody(SECRET, body) })).toBe(200);
  await h.tasks.resumeQueue({ name: h.queue.name });
  expect((await waitForRun(store, run.id)).status).toBe('done');
});
