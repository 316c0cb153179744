import net from 'node:net';
import { status } from '@grpc/grpc-js';
import type { OidcTokenRequest } from '../../emulator/cloud-tasks';
import { codeOf, millis, seconds, sleep, startHarness, uniqueParent, type Harness } from './support/harness';

let h: Harness;
const oidcRequests: OidcTokenRequest[] = [];
beforeAll(async () => {
  h = await startHarness({
    // Lowered so that a deadline can be exercised in well under a second.
    dispatchDeadlineRange: { minMs: 100, maxMs: 30 * 60_000 },
    oidcTokenFor: (request) => {
      oidcRequests.push(request);
      return `token-for-${request.serviceAccountEmail}`;
    },
  });
});
afterAll(() => h.close());
afterEach(() => h.target.respondWith(() => 200));

interface QueueSettings {
  rateLimits?: { maxDispatchesPerSecond?: number; maxConcurrentDispatches?: number };
  retryConfig?: { maxAttempts?: number; minBackoff?: ReturnType<typeof seconds>; maxBackoff?: ReturnType<typeof seconds>; maxDoublings?: number };
}

async function newQueue(settings: QueueSettings = {}, id = 'q'): Promise<string> {
  const parent = uniqueParent();
  const name = `${parent}/queues/${id}`;
  await h.client.createQueue({ parent, queue: { name, ...settings } });
  return name;
}

/** A port that nothing listens on any more, so connecting is refused at once. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const header = (value: string | string[] | undefined): string => (Array.isArray(value) ? value.join(',') : (value ?? ''));

describe('what a dispatch carries', () => {
  test('the task method, URL, headers and body, the bearer token and the X-CloudTasks-* headers', async () => {
    const queue = await newQueue({}, 'carrier');
    const [task] = await h.client.createTask({
      parent: queue,
      task: {
        name: `${queue}/tasks/carried`,
        httpRequest: {
          url: h.target.url('/carry?x=1'),
          httpMethod: 'PUT',
          headers: { 'Content-Type': 'application/json', 'X-Custom': 'yes', 'X-CloudTasks-TaskName': 'forged' },
          body: Buffer.from('{"n":1}'),
          oidcToken: { serviceAccountEmail: 'worker@proj.iam.gserviceaccount.com', audience: 'https://worker.example' },
        },
      },
    });
    await h.emulator.idle({ queue });
    const [request] = h.target.requestsFor('carried');
    expect(request).toBeDefined();
    expect(request?.method).toBe('PUT');
    expect(request?.url).toBe('/carry?x=1');
    expect(request?.body).toBe('{"n":1}');
    expect(request?.headers).toMatchObject({
      'content-type': 'application/json',
      'x-custom': 'yes',
      'user-agent': 'Google-Cloud-Tasks',
      authorization: 'Bearer token-for-worker@proj.iam.gserviceaccount.com',
      'x-cloudtasks-queuename': 'carrier',
      'x-cloudtasks-taskname': 'carried',
      'x-cloudtasks-taskretrycount': '0',
      'x-cloudtasks-taskexecutioncount': '0',
    });
    expect(Number(header(request?.headers['x-cloudtasks-tasketa'])) * 1000).toBeCloseTo(millis(task.scheduleTime), 0);
    expect(request?.headers['x-cloudtasks-taskpreviousresponse']).toBeUndefined();
    expect(oidcRequests).toContainEqual({ serviceAccountEmail: 'worker@proj.iam.gserviceaccount.com', audience: 'https://worker.example' });
  });

  test('without an audience the OIDC token is asked for the target URL', async () => {
    const queue = await newQueue();
    const url = h.target.url('/aud');
    await h.client.createTask({ parent: queue, task: { httpRequest: { url, oidcToken: { serviceAccountEmail: 'a@b.c' } } } });
    await h.emulator.idle({ queue });
    expect(oidcRequests).toContainEqual({ serviceAccountEmail: 'a@b.c', audience: url });
  });
});

describe('retries', () => {
  test('failures are retried with doubling, capped backoff until max_attempts, then the task is dropped', async () => {
    // 50 ms, doubled once to 100 ms, then linear (+100 ms) but capped at 150 ms: 50, 100, 150.
    const queue = await newQueue({
      retryConfig: { maxAttempts: 4, minBackoff: seconds(0.05), maxBackoff: seconds(0.15), maxDoublings: 1 },
    });
    h.target.respondWith((r) => (r.taskId === 'doomed' ? 500 : 200));
    const droppedBefore = h.emulator.stats().dropped;
    await h.client.createTask({ parent: queue, task: { name: `${queue}/tasks/doomed`, httpRequest: { url: h.target.url() } } });
    await h.emulator.idle({ queue });

    const attempts = h.target.requestsFor('doomed');
    expect(attempts.map((r) => r.retryCount)).toEqual([0, 1, 2, 3]);
    expect(attempts.map((r) => header(r.headers['x-cloudtasks-taskexecutioncount']))).toEqual(['0', '1', '2', '3']);
    expect(attempts.slice(1).every((r) => r.headers['x-cloudtasks-taskpreviousresponse'] === '500')).toBe(true);
    expect(header(attempts[1]?.headers['x-cloudtasks-taskretryreason'])).toContain('500');
    const gaps = attempts.slice(1).map((r, i) => r.receivedAt - (attempts[i]?.receivedAt ?? 0));
    [50, 100, 150].forEach((backoff, i) => expect(gaps[i]).toBeGreaterThanOrEqual(backoff - 2));
    // Each retry's ETA is its predecessor's response time plus the backoff, so ETAs step by at least as much.
    const etas = attempts.map((r) => Number(header(r.headers['x-cloudtasks-tasketa'])) * 1000);
    [50, 100, 150].forEach((backoff, i) => expect((etas[i + 1] ?? 0) - (etas[i] ?? 0)).toBeGreaterThanOrEqual(backoff - 1));

    expect(h.emulator.stats().dropped).toBe(droppedBefore + 1);
    expect(await codeOf(h.client.getTask({ name: `${queue}/tasks/doomed` }))).toBe(status.NOT_FOUND);
    // A dropped task's name is reserved like any other.
    expect(await codeOf(h.client.createTask({ parent: queue, task: { name: `${queue}/tasks/doomed`, httpRequest: { url: h.target.url() } } }))).toBe(status.ALREADY_EXISTS);
  });

  test('a task that fails and then succeeds records its attempts and is removed', async () => {
    const queue = await newQueue({ retryConfig: { minBackoff: seconds(0.3), maxBackoff: seconds(1) } });
    h.target.respondWith((r) => (r.taskId === 'flaky' && r.retryCount === 0 ? 503 : 200));
    const [task] = await h.client.createTask({ parent: queue, task: { name: `${queue}/tasks/flaky`, httpRequest: { url: h.target.url() } } });
    await h.target.waitUntil(() => h.target.requestsFor('flaky').length === 1, 'the first attempt');

    // Between the attempts the task shows the failure and its next schedule time.
    let waiting = (await h.client.getTask({ name: task.name }))[0];
    while (waiting.responseCount !== 1) {
      await sleep(10);
      waiting = (await h.client.getTask({ name: task.name }))[0];
    }
    expect(waiting.dispatchCount).toBe(1);
    expect(waiting.lastAttempt?.responseStatus?.code).toBe(status.UNAVAILABLE);
    expect(millis(waiting.scheduleTime)).toBeGreaterThanOrEqual(millis(waiting.lastAttempt?.responseTime) + 300);
    expect(millis(waiting.firstAttempt?.dispatchTime)).toBeGreaterThan(0);

    await h.emulator.idle({ queue });
    const attempts = h.target.requestsFor('flaky');
    expect(attempts.map((r) => r.retryCount)).toEqual([0, 1]);
    expect(attempts[1]?.headers['x-cloudtasks-taskpreviousresponse']).toBe('503');
    expect(await codeOf(h.client.getTask({ name: task.name }))).toBe(status.NOT_FOUND);
  });

  test('connection errors are retried too', async () => {
    const queue = await newQueue({ retryConfig: { maxAttempts: 2, minBackoff: seconds(0.01), maxBackoff: seconds(0.01) } });
    const before = h.emulator.stats();
    await h.client.createTask({ parent: queue, task: { httpRequest: { url: `http://127.0.0.1:${await closedPort()}/refused` } } });
    await h.emulator.idle({ queue });
    const after = h.emulator.stats();
    expect(after.dispatches - before.dispatches).toBe(2);
    expect(after.failures - before.failures).toBe(2);
    expect(after.dropped - before.dropped).toBe(1);
  });
});

describe('timing', () => {
  test('schedule_time holds a task back; tasks due earlier go first', async () => {
    const queue = await newQueue();
    const later = Date.now() + 700;
    const [delayed] = await h.client.createTask({
      parent: queue,
      task: { name: `${queue}/tasks/later`, scheduleTime: seconds(later / 1000), httpRequest: { url: h.target.url() } },
    });
    await h.client.createTask({ parent: queue, task: { name: `${queue}/tasks/now`, httpRequest: { url: h.target.url() } } });
    expect(millis(delayed.scheduleTime)).toBe(later);
    const [pending] = await h.client.listTasks({ parent: queue });
    expect(pending.map((t) => t.name)).toContain(delayed.name);

    await h.emulator.idle({ queue });
    const [first] = h.target.requestsFor('now');
    const [second] = h.target.requestsFor('later');
    expect(first && second && first.receivedAt <= second.receivedAt).toBe(true);
    expect(second?.receivedAt).toBeGreaterThanOrEqual(later);
    expect(Number(header(second?.headers['x-cloudtasks-tasketa'])) * 1000).toBeCloseTo(later, 0);
  });

  test('dispatch_deadline aborts a slow handler and the attempt is retried', async () => {
    const queue = await newQueue({ retryConfig: { minBackoff: seconds(0.05), maxBackoff: seconds(0.05) } });
    const before = h.emulator.stats();
    // The first attempt hangs until the emulator gives up on it; the retry answers at once.
    h.target.respondWith(async (r) => {
      if (r.taskId === 'slow' && r.retryCount === 0) await r.abandoned;
      return 200;
    });
    await h.client.createTask({
      parent: queue,
      task: { name: `${queue}/tasks/slow`, dispatchDeadline: seconds(0.3), httpRequest: { url: h.target.url() } },
    });
    await h.emulator.idle({ queue });
    const attempts = h.target.requestsFor('slow');
    expect(attempts.map((r) => r.retryCount)).toEqual([0, 1]);
    expect(attempts[1]?.headers['x-cloudtasks-taskpreviousresponse']).toBeUndefined();
    expect(header(attempts[1]?.headers['x-cloudtasks-taskretryreason'])).toContain('deadline');
    expect(header(attempts[1]?.headers['x-cloudtasks-taskexecutioncount'])).toBe('0');
    expect((attempts[1]?.receivedAt ?? 0) - (attempts[0]?.receivedAt ?? 0)).toBeGreaterThanOrEqual(300);
    expect(h.emulator.stats().timeouts - before.timeouts).toBe(1);
  });

  test('max_dispatches_per_second spaces dispatches after the burst', async () => {
    // Rate 5/s gives a burst of 5: ten tasks need at least a second for the last five tokens.
    const queue = await newQueue({ rateLimits: { maxDispatchesPerSecond: 5 } });
    h.target.respondWith(() => 200);
    const names: string[] = [];
    for (let i = 0; i < 10; i++) names.push(`rate-${i}`);
    const start = Date.now();
    await Promise.all(names.map((id) => h.client.createTask({ parent: queue, task: { name: `${queue}/tasks/${id}`, httpRequest: { url: h.target.url() } } })));
    await h.emulator.idle({ queue });
    const times = names.map((id) => h.target.requestsFor(id)[0]?.receivedAt ?? NaN).sort((a, b) => a - b);
    expect(times.every(Number.isFinite)).toBe(true);
    expect((times[9] ?? 0) - start).toBeGreaterThanOrEqual(1000 - 50);
  });

  test('max_concurrent_dispatches caps the requests in flight', async () => {
    const queue = await newQueue({ rateLimits: { maxConcurrentDispatches: 2 } });
    const releases: Array<() => void> = [];
    let inFlight = 0;
    let maxInFlight = 0;
    h.target.respondWith(async () => {
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise<void>((resolve) => releases.push(resolve));
      inFlight -= 1;
      return 200;
    });
    for (let i = 0; i < 6; i++) {
      await h.client.createTask({ parent: queue, task: { name: `${queue}/tasks/c${i}`, httpRequest: { url: h.target.url() } } });
    }
    const ours = (): number => h.target.requests.filter((r) => /^c\d$/.test(r.taskId) && r.url === '/task').length;
    await h.target.waitUntil(() => ours() >= 2, 'two concurrent requests');
    await sleep(300); // a third would arrive now if the limit were not enforced
    expect(ours()).toBe(2);
    while (ours() < 6 || releases.length > 0) {
      releases.shift()?.();
      await sleep(10);
    }
    await h.emulator.idle({ queue });
    expect(maxInFlight).toBe(2);
  });
});
