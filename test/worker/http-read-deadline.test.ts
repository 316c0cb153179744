import net from 'node:net';
import { encodePayload, signBody, SIGNATURE_HEADER, type TaskPayload } from '../../src/executors/cloud-tasks';
import { hmacAuthenticator } from '../../src/worker/auth';
import { createWorkerHandler, type WorkerHandlerOptions, type WorkerLogEntry } from '../../src/worker/handler';
import { startWorkerServer, type WorkerServer } from '../../src/worker/server';

const SECRET = 'read-deadline-test-secret-0123';
const DEADLINE_MS = 1_500;
const payload: TaskPayload = { v: 2, type: 'slice', ns: '', run: 'run-1', migration: 'default:0001_a', step: 0, shard: 0, slice: 0 };

let worker: WorkerServer;
const log: WorkerLogEntry[] = [];
const ran: TaskPayload[] = [];

beforeAll(async () => {
  // Only the HTTP layer is under test: the pipeline records what reached it.
  const pipeline = { run: async (p: TaskPayload) => (ran.push(p), { result: 'done' as const, detail: '' }) } as unknown as WorkerHandlerOptions['pipeline'];
  const handler = createWorkerHandler({ pipeline, authenticator: hmacAuthenticator(SECRET, 60_000), log: (e) => log.push(e), readDeadlineMs: DEADLINE_MS });
  worker = await startWorkerServer(handler, { port: 0, host: '127.0.0.1', readDeadlineMs: DEADLINE_MS });
});

afterAll(() => worker.close(1_000));

interface SlowOutcome {
  /** Everything the server sent back. */
  response: string;
  /** Bytes of the body written before the server hung up. */
  sent: number;
}

/**
 * A client on a raw socket that sends the head, then the rest one byte a second, until the server
 * closes the connection or the last byte is out. The body is signed: only the timing is wrong.
 */
function slowClient(mode: 'body' | 'headers'): Promise<SlowOutcome> {
  const body = encodePayload(payload);
  const head = `POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n${SIGNATURE_HEADER}: ${signBody(SECRET, body)}\r\n`;
  // Headers mode: one more header trickles instead, and the blank line that ends the head never comes.
  const first = Buffer.from(mode === 'body' ? `${head}\r\n` : head);
  const rest = mode === 'body' ? body : Buffer.from(`X-Slow: ${'a'.repeat(body.length)}`);
  return new Promise((resolve, reject) => {
    const socket = net.connect(worker.port, '127.0.0.1');
    let response = '';
    let sent = 0;
    const timer = setInterval(() => {
      if (sent < rest.length) socket.write(rest.subarray(sent, ++sent));
    }, 1_000);
    socket.on('connect', () => socket.write(first));
    socket.on('data', (d: Buffer) => (response += d.toString()));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      // A reset after the server's answer still counts as being cut off.
      if (error.code !== 'ECONNRESET' && error.code !== 'EPIPE') reject(error);
    });
    socket.on('close', () => {
      clearInterval(timer);
      resolve({ response, sent });
    });
  });
}

async function post(body: Buffer, headers: Record<string, string> = { [SIGNATURE_HEADER]: signBody(SECRET, body) }): Promise<{ status: number; body: unknown }> {
  const response = await fetch(worker.url, { method: 'POST', body, headers: { 'Content-Type': 'application/json', ...headers } });
  return { status: response.status, body: await response.json() };
}

test('a client that sends its body a byte a second is cut off with 408, and others are served meanwhile and after', async () => {
  log.length = 0;
  ran.length = 0;
  const slow = slowClient('body');
  // While the slow client holds its connection, a normal request goes through.
  expect(await post(encodePayload(payload))).toEqual({ status: 200, body: { result: 'done', message: expect.any(String) } });
  const outcome = await slow;
  expect(outcome.sent).toBeLessThan(encodePayload(payload).length);
  expect(outcome.response).toMatch(/^HTTP\/1\.1 408 /);
  expect(outcome.response).toMatch(/\r\nConnection: close\r\n/i);
  expect(outcome.response.endsWith('\r\n\r\n{"error":"request timeout"}')).toBe(true);
  expect(log).toContainEqual(expect.objectContaining({ severity: 'WARNING', status: 408, message: `rejected: request body not received within ${DEADLINE_MS} ms` }));
  expect(await post(encodePayload(payload))).toMatchObject({ status: 200 });
  expect(ran).toEqual([payload, payload]);
});

test('a client that sends its headers a byte a second is cut off too (node: server.headersTimeout)', async () => {
  ran.length = 0;
  const outcome = await slowClient('headers');
  expect(outcome.sent).toBeLessThan(encodePayload(payload).length);
  expect(outcome.response).toMatch(/^HTTP\/1\.1 408 /);
  expect(await post(encodePayload(payload))).toMatchObject({ status: 200 });
  expect(ran).toEqual([payload]);
});

test('a body over the limit gets 413 and the status only, before authentication', async () => {
  log.length = 0;
  expect(await post(Buffer.alloc(100_000, 'x'), {})).toEqual({ status: 413, body: { error: 'payload too large' } });
  expect(log).toContainEqual(expect.objectContaining({ status: 413, message: expect.stringMatching(/^rejected: request body exceeds \d+ bytes$/) }));
  expect(await post(encodePayload(payload))).toMatchObject({ status: 200 });
});
