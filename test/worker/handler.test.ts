import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DsMigrateError } from '../../src/errors';
import { encodePayload, MalformedPayloadError, signBody, SIGNATURE_HEADER, type TaskPayload } from '../../src/executors/cloud-tasks';
import { hmacAuthenticator } from '../../src/worker/auth';
import { createWorkerHandler, type WorkerHandlerOptions, type WorkerLogEntry } from '../../src/worker/handler';

type Pipeline = WorkerHandlerOptions['pipeline'];
type StepOutcome = Awaited<ReturnType<Pipeline['run']>>;

const SECRET = 'handler-test-secret-0123';
const payload: TaskPayload = { v: 2, type: 'slice', ns: '', run: 'run-1', migration: 'default:0001_a', step: 0, shard: 0, slice: 0 };

/** The handler over a stand-in pipeline: only the HTTP mapping is under test here. */
function serve(run: (p: TaskPayload) => Promise<StepOutcome>, wrap?: (handler: ReturnType<typeof createWorkerHandler>) => Parameters<typeof createServer>[1]) {
  const log: WorkerLogEntry[] = [];
  const handler = createWorkerHandler({ pipeline: { run } as unknown as Pipeline, authenticator: hmacAuthenticator(SECRET, 60_000), log: (e) => log.push(e) });
  const server = createServer(wrap ? wrap(handler) : handler);
  return { server, log };
}

async function request(server: Server, body: Buffer, init: { method?: string; signed?: boolean; headers?: Record<string, string> } = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    const headers: Record<string, string> = { ...init.headers, ...(init.signed === false ? {} : { [SIGNATURE_HEADER]: signBody(SECRET, body) }) };
    const response = await fetch(`http://127.0.0.1:${port}/tasks`, { method: init.method ?? 'POST', headers, body: init.method === 'GET' ? undefined : body });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

test('a step taken, already taken, or failed for good is 200: Cloud Tasks must not retry it', async () => {
  for (const result of ['done', 'stale', 'failed'] as const) {
    const { server } = serve(async () => ({ result, detail: '' }));
    expect(await request(server, encodePayload(payload))).toMatchObject({ status: 200, body: { result } });
  }
});

test('a task the pipeline finds is not ours is 200 "dropped", logged as an error: it can never succeed, so Cloud Tasks must not retry it', async () => {
  const { server, log } = serve(async () => {
    throw new MalformedPayloadError('run run-1 has no migration default:0001_a');
  });
  expect(await request(server, encodePayload(payload))).toEqual({
    status: 200,
    body: { result: 'dropped', message: 'dropped: Malformed task payload: run run-1 has no migration default:0001_a' },
  });
  expect(log).toEqual([expect.objectContaining({ severity: 'ERROR', status: 200, payload })]);
});

test('a transient error is 500, logged, so that Cloud Tasks retries with backoff', async () => {
  const { server, log } = serve(async () => {
    throw new DsMigrateError('DATASTORE', 'Datastore unavailable');
  });
  expect((await request(server, encodePayload(payload))).status).toBe(500);
  expect(log).toContainEqual(expect.objectContaining({ severity: 'ERROR', status: 500, message: expect.stringMatching(/will be retried: Datastore unavailable/) }));
});

test('authentication comes first: an unsigned GET is 401 (and says only that), a signed one 405', async () => {
  const ran = jest.fn();
  const unsigned = serve(ran);
  expect(await request(unsigned.server, Buffer.alloc(0), { method: 'GET', signed: false })).toEqual({ status: 401, body: { error: 'unauthenticated' } });
  expect(unsigned.log).toContainEqual(expect.objectContaining({ status: 401, message: expect.stringMatching(/^unauthenticated request rejected \(401\): .+/) }));
  expect((await request(serve(ran).server, Buffer.alloc(0), { method: 'GET' })).status).toBe(405);
  expect(ran).not.toHaveBeenCalled();
});

test('a body over the limit is 413 before anything else, even signed', async () => {
  const ran = jest.fn();
  expect(await request(serve(ran).server, Buffer.alloc(100_000, 'x'))).toEqual({ status: 413, body: { error: 'payload too large' } });
  expect(ran).not.toHaveBeenCalled();
});

test('mounted behind a framework that already read the raw body (express.raw())', async () => {
  const seen: TaskPayload[] = [];
  const { server } = serve(
    async (p) => (seen.push(p), { result: 'done', detail: '' }),
    (handler) => (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => handler(Object.assign(req, { body: Buffer.concat(chunks) }), res));
    },
  );
  expect((await request(server, encodePayload(payload))).status).toBe(200);
  expect(seen).toEqual([payload]);
});

describe("header values are logged cut to 200 characters: before authentication they are anyone's", () => {
  const huge = 'x'.repeat(15_000);

  test.each([
    ['unsigned', false, 401],
    ['signed', true, 200],
  ])('%s', async (_, signed, status) => {
    const { server, log } = serve(async () => ({ result: 'stale', detail: '' }));
    expect((await request(server, encodePayload(payload), { signed, headers: { 'X-CloudTasks-TaskName': huge } })).status).toBe(status);
    expect(log).toHaveLength(1);
    expect(log[0].task).toBe(`${'x'.repeat(200)}… (15000 characters)`);
    expect(JSON.stringify(log[0]).length).toBeLessThan(1_000);
  });

  test("a task name of Cloud Tasks' own length is logged whole", async () => {
    const { server, log } = serve(async () => ({ result: 'stale', detail: '' }));
    const name = 'a'.repeat(40);
    await request(server, encodePayload(payload), { headers: { 'X-CloudTasks-TaskName': name } });
    expect(log[0].task).toBe(name);
  });
});

test('a request that says it was retried 999 times is one delivery to the pipeline: only the run counts attempts', async () => {
  const ran = jest.fn(async () => ({ result: 'done' as const, detail: '' }));
  await request(serve(ran).server, encodePayload(payload), { headers: { 'X-CloudTasks-TaskRetryCount': '999' } });
  expect(ran.mock.calls).toEqual([[payload]]);
});
