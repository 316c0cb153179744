import { unsignedOidcToken } from '../../emulator/cloud-tasks';
import { CONTROL_KINDS as STORED_KINDS } from '../../src/control';
import { encodePayload, signBody, SIGNATURE_HEADER, taskIdFor, type StartPayload } from '../../src/executors/cloud-tasks';
import { startRun } from '../../src/executors/cloud-tasks';
import type { RunState } from '../../src/migrations';
import { startWorker, type RunningWorker, type WorkerLogEntry } from '../../src/worker';
import { tempApp } from '../support/cli';
import type { Datastore } from '../../src/datastore';
import { LocalSigner } from './support/oidc';
import { graphOf, INCREMENT_MIGRATION, SECRET, seedCounters, singleFlavour, snapshot, startTasks, waitForRun, type TasksHarness } from './support/harness';

const ACCOUNT = 'tasks@proj.iam.gserviceaccount.com';
const AUDIENCE = 'https://worker.example/';
const CONTROL_KINDS = ['Counter', ...Object.values(STORED_KINDS)];
/** What a task that is refused after authentication must leave as it was (the lease may be renewed by any task). */
const RUN_KINDS = ['Counter', STORED_KINDS.migration, STORED_KINDS.run, STORED_KINDS.job, STORED_KINDS.shard];

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
    settings: { auth: { kind: 'oidc', audience: AUDIENCE, allowedServiceAccounts: [ACCOUNT] }, emulatorHost: h.emulator.host },
    certs: async () => signer.certs(),
    log: (e) => log.push(e),
  });
  // A run whose first task waits in a paused queue: only our own requests reach the worker.
  await h.tasks.createQueue({ parent: `projects/${h.queue.project}/locations/${h.queue.location}`, queue: { name: h.queue.name } });
  await h.tasks.pauseQueue({ name: h.queue.name });
  run = (await startRun({ store, graph, tasks: h.tasks, settings: h.dispatch(hmacWorker.url) })).run!;
});

afterAll(async () => {
  await hmacWorker.stop();
  await oidcWorker.stop();
  await h.close();
  await store.close();
});

const startTask = (): StartPayload => ({ v: 2, type: 'start', ns: '', run: run.id, migration: run.migrations[0].id, step: 0, page: 0 });

async function post(url: string, body: Buffer | string, headers: Record<string, string> = {}): Promise<number> {
  return (await exchange(url, body, headers)).status;
}

/** The status and the body exactly as sent. */
async function exchange(url: string, body: Buffer | string, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  const response = await fetch(url, { method: 'POST', body, headers: { 'Content-Type': 'application/json', ...headers } });
  return { status: response.status, text: await response.text() };
}

/** What a refused caller may learn: the status, nothing more. */
const REFUSED = { 401: '{"error":"unauthenticated"}', 403: '{"error":"forbidden"}' };

describe('requests that are not ours change nothing, and learn only the status (the reason is logged)', () => {
  const body = () => encodePayload(startTask());

  /** Posts, then checks the answer, that the worker logged `reason`, and that nothing changed. */
  async function refused(url: string, headers: Record<string, string>, expected: 401 | 403, reason: RegExp): Promise<void> {
    const before = await snapshot(store, CONTROL_KINDS);
    log.length = 0;
    expect(await exchange(url, body(), headers)).toEqual({ status: expected, text: REFUSED[expected] });
    expect(log).toEqual([expect.objectContaining({ severity: 'WARNING', status: expected, message: expect.stringMatching(reason) })]);
    expect(log[0].message).toMatch(new RegExp(`^unauthenticated request rejected \\(${expected}\\): `));
    expect(await snapshot(store, CONTROL_KINDS)).toEqual(before);
  }

  test.each([
    ['unsigned', 401, /no X-Dsmigrate-Signature header/i, () => ({})],
    ['signed with the wrong secret', 401, /signature mismatch/, () => ({ [SIGNATURE_HEADER]: signBody('not-the-shared-secret!', body()) })],
    ['signed with a malformed signature', 401, /malformed signature header/, () => ({ [SIGNATURE_HEADER]: 't=1,v1=forged' })],
    ['signed two hours ago', 401, /signature is \d+ s old/, () => ({ [SIGNATURE_HEADER]: signBody(SECRET, body(), Date.now() - 2 * 3_600_000) })],
  ] as const)('shared secret: %s -> %i', async (_, expected, reason, headers) => {
    await refused(hmacWorker.url, headers(), expected, reason);
  });

  test('shared secret: a signature for another body -> 401', async () => {
    const other = encodePayload({ ...startTask(), page: 1 });
    await refused(hmacWorker.url, { [SIGNATURE_HEADER]: signBody(SECRET, other) }, 401, /signature mismatch/);
  });

  const now = () => Math.floor(Date.now() / 1000);
  test.each([
    ['no token', 401, /no bearer token/, (): string | undefined => undefined],
    ["the emulator's unsigned token", 401, /No pem found for envelope/, () => unsignedOidcToken({ serviceAccountEmail: ACCOUNT, audience: AUDIENCE })],
    ['an expired token', 401, /used too late/, () => signer.token({ email: ACCOUNT, aud: AUDIENCE, iat: now() - 7200, exp: now() - 3600 })],
    ['a token signed by another key', 401, /Invalid token signature/, () => new LocalSigner(signer.kid).token({ email: ACCOUNT, aud: AUDIENCE })],
    ['a token for another audience', 403, /wrong recipient/i, () => signer.token({ email: ACCOUNT, aud: 'https://another-service.example/' })],
    [
      'a token of an account not allowed',
      403,
      /account intruder@proj\.iam\.gserviceaccount\.com is not allowed/,
      () => signer.token({ email: 'intruder@proj.iam.gserviceaccount.com', aud: AUDIENCE }),
    ],
    ['a token whose email is not verified', 403, /no verified email/, () => signer.token({ email: ACCOUNT, aud: AUDIENCE, email_verified: false })],
  ] as const)('OIDC: %s -> %i', async (_, expected, reason, token) => {
    const t = token();
    await refused(oidcWorker.url, t ? { Authorization: `Bearer ${t}` } : {}, expected, reason);
  });

  test('OIDC: a valid token gets through (a task for no run is acknowledged without effect)', async () => {
    const before = await snapshot(store, CONTROL_KINDS);
    const stale = encodePayload({ ...startTask(), run: 'run-that-does-not-exist' });
    expect(await post(oidcWorker.url, stale, { Authorization: `Bearer ${signer.token({ email: ACCOUNT, aud: AUDIENCE })}` })).toBe(200);
    expect(await snapshot(store, CONTROL_KINDS)).toEqual(before);
  });
});

/** Posts a body as it is, signed with the shared secret. */
async function signed(payload: object | Buffer, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const body = Buffer.isBuffer(payload) ? payload : Buffer.from(JSON.stringify(payload));
  const { status, text } = await exchange(hmacWorker.url, body, { [SIGNATURE_HEADER]: signBody(SECRET, body), ...headers });
  return { status, body: JSON.parse(text) as Record<string, unknown> };
}

const DROPPED = { status: 200, body: { result: 'dropped', message: expect.stringMatching(/^dropped: Malformed task payload: /) } };

describe('authenticated requests that are not our tasks are dropped: 200, so that Cloud Tasks does not retry them, logged, nothing changed', () => {
  test('a field of the wrong type', async () => {
    const before = await snapshot(store, CONTROL_KINDS);
    log.length = 0;
    expect(await signed({ ...startTask(), step: 'all' })).toEqual(DROPPED);
    expect(log).toContainEqual(expect.objectContaining({ severity: 'ERROR', status: 200, message: expect.stringMatching(/^dropped: Malformed task payload: "step"/) }));
    expect(await snapshot(store, CONTROL_KINDS)).toEqual(before);
  });

  test.each([
    ['a namespace with characters Datastore refuses', { ns: 'no spaces/or slashes' }, /"ns" is not a namespace: .* holds characters other than/],
    ['a namespace of 101 characters', { ns: 'n'.repeat(101) }, /"ns" is not a namespace: .* at most 100/],
    ['a reserved namespace', { ns: '__kind__' }, /"ns" is not a namespace: .* is reserved/],
    ['a run id Datastore reserves', { run: '__run__' }, /"run" must be a run id/],
    ['a run id with a slash', { run: 'run-1/../x' }, /"run" must be a run id/],
    ['a migration id with a line break', { migration: 'default:0001_a\nforged log line' }, /"migration" must be .* without control characters/],
  ])('%s', async (_, fields, reason) => {
    const before = await snapshot(store, CONTROL_KINDS);
    log.length = 0;
    expect(await signed({ ...startTask(), ...fields })).toEqual(DROPPED);
    expect(log).toEqual([expect.objectContaining({ severity: 'ERROR', status: 200, message: expect.stringMatching(reason) })]);
    expect(await snapshot(store, CONTROL_KINDS)).toEqual(before);
  });

  // JSON.parse makes these own fields; `in` found them on every object's prototype and let them through.
  test.each(['__proto__', 'constructor', 'toString', 'hasOwnProperty'])('an extra field named %s', async (field) => {
    const before = await snapshot(store, CONTROL_KINDS);
    log.length = 0;
    const body = Buffer.from(`${JSON.stringify(startTask()).slice(0, -1)},${JSON.stringify(field)}:{"polluted":true}}`);
    expect(await signed(body)).toEqual(DROPPED);
    expect(log).toEqual([expect.objectContaining({ status: 200, message: expect.stringContaining(`unexpected field(s) ${JSON.stringify(field)}`) })]);
    expect(await snapshot(store, CONTROL_KINDS)).toEqual(before);
  });

  test('naming a migration, step or shard the run does not have, and the run is untouched', async () => {
    // Lay out the run's first step ourselves (its slices wait in the paused queue), so that it has a job with shards.
    expect((await signed(startTask())).status).toBe(200);
    const before = await snapshot(store, RUN_KINDS);
    log.length = 0;
    expect(await signed({ ...startTask(), migration: 'default:9999_nope' })).toEqual(DROPPED);
    expect(await signed({ ...startTask(), step: 7 })).toEqual(DROPPED);
    expect(await signed({ v: 2, type: 'slice', ns: '', run: run.id, migration: run.migrations[0].id, step: 0, shard: 999, slice: 0 })).toEqual(DROPPED);
    expect(log.map((e) => [e.status, e.message])).toEqual([
      [200, expect.stringMatching(/has no migration default:9999_nope/)],
      [200, expect.stringMatching(/has 1 step\(s\) in run .*, not a step 7/)],
      [200, expect.stringMatching(/has no shard 999/)],
    ]);
    expect(await snapshot(store, RUN_KINDS)).toEqual(before);
  });

  test("a slice that is not its shard's next one runs nothing and sends no slice after it: no second chain of slices", async () => {
    const before = await snapshot(store, RUN_KINDS);
    const made = { v: 2 as const, type: 'slice' as const, ns: '', run: run.id, migration: run.migrations[0].id, step: 0, shard: 0, slice: 5 };
    expect(await signed(made)).toEqual({ status: 200, body: { result: 'stale', message: expect.stringMatching(/shard 0 is at slice 0, not 5/) } });
    expect(await snapshot(store, RUN_KINDS)).toEqual(before);
    const next = `${h.queue.name}/tasks/${taskIdFor({ ...made, slice: 6 })}`;
    await expect(h.tasks.getTask({ name: next })).rejects.toMatchObject({ code: 5 });
  });
});

test('and a correctly signed task does move the run on (the requests above would have)', async () => {
  const body = encodePayload(startTask());
  expect(await post(hmacWorker.url, body, { [SIGNATURE_HEADER]: signBody(SECRET, body) })).toBe(200);
  await h.tasks.resumeQueue({ name: h.queue.name });
  expect((await waitForRun(store, run.id)).status).toBe('done');
});
