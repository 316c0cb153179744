import {
  decodePayload,
  encodePayload,
  MalformedPayloadError,
  resolveDispatchSettings,
  resolveWorkerSettings,
  signBody,
  taskIdFor,
  verifySignature,
  type SlicePayload,
  type TaskPayload,
} from '../../src/executors/cloud-tasks';

const slice: SlicePayload = { v: 2, type: 'slice', ns: '', run: 'run-20260101-000000-abcd', migration: 'default:0001_add_colour', step: 0, shard: 3, slice: 7 };

describe('payload', () => {
  test('round-trips and carries ids only, far under 100 KB', () => {
    const plan: TaskPayload = { v: 2, type: 'start', ns: 'control', run: slice.run, migration: slice.migration, step: 2, page: 1 };
    expect(decodePayload(encodePayload(slice))).toEqual(slice);
    expect(decodePayload(encodePayload(plan))).toEqual(plan);
    const longest = { ...slice, ns: 'n'.repeat(100), run: 'r'.repeat(100), migration: `app:${'m'.repeat(200)}` };
    expect(encodePayload(longest).length).toBeLessThan(1024);
  });

  test.each([
    ['empty', ''],
    ['not JSON', '{"v":1,'],
    ['an array', '[1]'],
    ['an unknown version', JSON.stringify({ ...slice, v: 1 })],
    ['an unknown type', JSON.stringify({ ...slice, type: 'delete-everything' })],
    ['a negative shard', JSON.stringify({ ...slice, shard: -1 })],
    ['a fractional slice', JSON.stringify({ ...slice, slice: 1.5 })],
    ['a missing run', JSON.stringify({ ...slice, run: undefined })],
    ['an extra field', JSON.stringify({ ...slice, operation: { fn: 'evil' } })],
    ['a huge body', JSON.stringify({ ...slice, run: 'x'.repeat(20_000) })],
  ])('refuses %s', (_, body) => {
    expect(() => decodePayload(Buffer.from(body))).toThrow(MalformedPayloadError);
  });
});

describe('task names', () => {
  test('the same step gives the same name; any other step another one', () => {
    const id = taskIdFor(slice);
    expect(id).toMatch(/^[0-9a-f]{40}$/);
    expect(taskIdFor({ ...slice })).toBe(id);
    const others = [
      { ...slice, slice: 8 },
      { ...slice, shard: 4 },
      { ...slice, step: 1 },
      { ...slice, migration: 'default:0002_x' },
      { ...slice, run: 'run-other' },
      { ...slice, ns: 'other' },
      { v: 2, type: 'start', ns: '', run: slice.run, migration: slice.migration, step: 0, page: 0 } as const,
    ];
    expect(new Set([id, ...others.map(taskIdFor)]).size).toBe(others.length + 1);
  });
});

describe('HMAC signatures', () => {
  const secret = 'a-secret-of-enough-length';
  const body = encodePayload(slice);
  const check = { maxAgeMs: 60_000 };

  test('a signature made with the secret verifies', () => {
    expect(verifySignature(secret, signBody(secret, body), body, check)).toEqual({ ok: true });
  });

  test.each([
    ['no header', () => undefined, body],
    ['another secret', () => signBody('another-secret-entirely', body), body],
    ['a changed body', () => signBody(secret, body), Buffer.from(body.toString().replace('"slice":7', '"slice":8'))],
    ['a stale timestamp', () => signBody(secret, body, Date.now() - 61_000), body],
    ['a future timestamp', () => signBody(secret, body, Date.now() + 3_600_000), body],
    ['garbage', () => 't=1,v1=zz', body],
  ])('refuses %s', (_, header, sent) => {
    expect(verifySignature(secret, header(), sent, check).ok).toBe(false);
  });
});

describe('settings', () => {
  const env = { DSMIGRATE_TASKS_QUEUE: 'projects/p/locations/europe-west1/queues/migrations', DSMIGRATE_WORKER_URL: 'https://worker.example/tasks' };

  test('OIDC by default in production, audience defaulting to the worker URL', () => {
    const s = resolveDispatchSettings({ serviceAccountEmail: 'tasks@p.iam.gserviceaccount.com' }, env);
    expect(s.auth).toEqual({ kind: 'oidc', serviceAccountEmail: 'tasks@p.iam.gserviceaccount.com', audience: 'https://worker.example/tasks' });
    expect(s.queue).toMatchObject({ project: 'p', location: 'europe-west1', queue: 'migrations' });
    expect(s.sliceBudgetMs).toBe(60_000);
  });

  test('environment variables win over the config file', () => {
    const s = resolveDispatchSettings({ queue: 'projects/x/locations/y/queues/z', workerUrl: 'https://other', serviceAccountEmail: 'a@b.c' }, env);
    expect(s.queue.name).toBe(env.DSMIGRATE_TASKS_QUEUE);
    expect(s.workerUrl).toBe(env.DSMIGRATE_WORKER_URL);
  });

  test.each([
    ['no queue', {}, { DSMIGRATE_WORKER_URL: 'https://w' }, /needs a queue/],
    ['a short queue name', {}, { ...env, DSMIGRATE_TASKS_QUEUE: 'migrations' }, /full name/],
    ['no worker URL', {}, { DSMIGRATE_TASKS_QUEUE: env.DSMIGRATE_TASKS_QUEUE }, /worker URL/],
    ['no way to authenticate', {}, env, /must authenticate/],
    ['the emulator without a secret', { serviceAccountEmail: 'a@b.c' }, { ...env, CLOUD_TASKS_EMULATOR_HOST: 'localhost:8123' }, /cannot sign OIDC/],
    ['a short secret', {}, { ...env, DSMIGRATE_WORKER_SECRET: 'short' }, /at least 16/],
    ['a slice longer than half the deadline', { serviceAccountEmail: 'a@b.c', sliceSeconds: 400 }, env, /at most half/],
  ])('refuses %s with a clear error', (_, config, environment, message) => {
    expect(() => resolveDispatchSettings(config, environment)).toThrow(message);
  });

  test('the worker needs something to check every request against', () => {
    expect(() => resolveWorkerSettings({}, {})).toThrow(/nothing to check against/);
    expect(resolveWorkerSettings({ serviceAccountEmail: 'tasks@p.iam.gserviceaccount.com' }, env).auth).toEqual({
      kind: 'oidc',
      audience: 'https://worker.example/tasks',
      allowedServiceAccounts: ['tasks@p.iam.gserviceaccount.com'],
    });
    expect(resolveWorkerSettings({}, { DSMIGRATE_WORKER_SECRET: 'x'.repeat(20) }).auth.kind).toBe('hmac');
  });
});
