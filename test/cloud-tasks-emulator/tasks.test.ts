import { status } from '@grpc/grpc-js';
import { startCloudTasksEmulator, tasksClientFor } from '../../emulator/cloud-tasks';
import { codeOf, errorOf, millis, seconds, sleep, startHarness, uniqueParent, type Harness } from './support/harness';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.close());

/** A queue of its own for each test; paused ones keep their tasks where a test can look at them. */
async function newQueue(options: { paused?: boolean } = {}): Promise<string> {
  const parent = uniqueParent();
  const name = `${parent}/queues/q`;
  await h.client.createQueue({ parent, queue: { name, retryConfig: { minBackoff: seconds(0.05), maxBackoff: seconds(0.1) } } });
  if (options.paused) await h.client.pauseQueue({ name });
  return name;
}

describe('create, get, list, delete', () => {
  test('CreateTask generates a name and fills defaults; GetTask shows the body only in the FULL view', async () => {
    const queue = await newQueue({ paused: true });
    const before = Date.now();
    const [created] = await h.client.createTask({
      parent: queue,
      task: { httpRequest: { url: h.target.url(), headers: { 'X-Kind': 'demo' }, body: Buffer.from('payload') } },
    });
    expect(created.name).toMatch(new RegExp(`^${queue}/tasks/\\d+$`));
    expect(created.httpRequest).toMatchObject({ url: h.target.url(), httpMethod: 'POST', headers: { 'X-Kind': 'demo' } });
    expect(millis(created.dispatchDeadline)).toBe(600_000);
    expect(created.dispatchCount).toBe(0);
    expect(created.responseCount).toBe(0);
    expect(millis(created.scheduleTime)).toBeGreaterThanOrEqual(before - 1);
    expect(millis(created.createTime)).toBe(millis(created.scheduleTime));

    const [basic] = await h.client.getTask({ name: created.name });
    expect(basic.view).toBe('BASIC');
    expect(basic.httpRequest?.body?.length ?? 0).toBe(0);
    const [full] = await h.client.getTask({ name: created.name, responseView: 'FULL' });
    expect(full.view).toBe('FULL');
    expect(Buffer.from(full.httpRequest?.body ?? '').toString()).toBe('payload');
  });

  test('ListTasks returns tasks in creation order, page by page', async () => {
    const queue = await newQueue({ paused: true });
    const names: string[] = [];
    for (let i = 0; i < 5; i++) {
      names.push((await h.client.createTask({ parent: queue, task: { httpRequest: { url: h.target.url() } } }))[0].name ?? '');
    }
    const [all] = await h.client.listTasks({ parent: queue });
    expect(all.map((t) => t.name)).toEqual(names);

    const [firstPage, , response] = await h.client.listTasks({ parent: queue, pageSize: 2 }, { autoPaginate: false });
    expect(firstPage.map((t) => t.name)).toEqual(names.slice(0, 2));
    const [secondPage] = await h.client.listTasks({ parent: queue, pageSize: 2, pageToken: response?.nextPageToken ?? '' }, { autoPaginate: false });
    expect(secondPage.map((t) => t.name)).toEqual(names.slice(2, 4));
    expect(await codeOf(h.client.listTasks({ parent: queue, pageToken: 'garbage!' }, { autoPaginate: false }))).toBe(status.INVALID_ARGUMENT);
  });

  test('DeleteTask removes the task; a second delete is NOT_FOUND', async () => {
    const queue = await newQueue({ paused: true });
    const [task] = await h.client.createTask({ parent: queue, task: { httpRequest: { url: h.target.url() } } });
    await h.client.deleteTask({ name: task.name });
    expect(await codeOf(h.client.getTask({ name: task.name }))).toBe(status.NOT_FOUND);
    expect(await codeOf(h.client.deleteTask({ name: task.name }))).toBe(status.NOT_FOUND);
    expect((await h.client.listTasks({ parent: queue }))[0]).toHaveLength(0);
  });

  test('invalid tasks are refused with INVALID_ARGUMENT (or UNIMPLEMENTED for App Engine) and the reason', async () => {
    const queue = await newQueue({ paused: true });
    const url = h.target.url();
    const cases: Array<[string, object, number, string]> = [
      ['no target', {}, status.INVALID_ARGUMENT, 'http_request'],
      ['no url', { httpRequest: {} }, status.INVALID_ARGUMENT, 'url'],
      ['ftp url', { httpRequest: { url: 'ftp://example.com/x' } }, status.INVALID_ARGUMENT, 'http://'],
      ['body on GET', { httpRequest: { url, httpMethod: 'GET', body: Buffer.from('x') } }, status.INVALID_ARGUMENT, 'body'],
      ['deadline too short', { httpRequest: { url }, dispatchDeadline: seconds(5) }, status.INVALID_ARGUMENT, 'dispatch_deadline'],
      ['deadline too long', { httpRequest: { url }, dispatchDeadline: seconds(31 * 60) }, status.INVALID_ARGUMENT, 'dispatch_deadline'],
      ['schedule too far ahead', { httpRequest: { url }, scheduleTime: seconds(Date.now() / 1000 + 31 * 86400) }, status.INVALID_ARGUMENT, '30 days'],
      ['name in another queue', { name: `${uniqueParent()}/queues/q/tasks/t`, httpRequest: { url } }, status.INVALID_ARGUMENT, 'not in queue'],
      ['bad task id', { name: `${queue}/tasks/has.dot`, httpRequest: { url } }, status.INVALID_ARGUMENT, 'task ID'],
      ['oidc without account', { httpRequest: { url, oidcToken: { audience: 'x' } } }, status.INVALID_ARGUMENT, 'service_account_email'],
      ['App Engine', { appEngineHttpRequest: { relativeUri: '/x' } }, status.UNIMPLEMENTED, 'App Engine'],
    ];
    for (const [label, task, code, words] of cases) {
      const error = await errorOf(h.client.createTask({ parent: queue, task }));
      expect({ label, code: error.code }).toEqual({ label, code });
      expect(error.details).toContain(words);
    }
    const [ok] = await h.client.createTask({ parent: queue, task: { httpRequest: { url }, dispatchDeadline: seconds(20) } });
    expect(millis(ok.dispatchDeadline)).toBe(20_000);
    expect(await codeOf(h.client.createTask({ parent: `${uniqueParent()}/queues/none`, task: { httpRequest: { url } } }))).toBe(status.NOT_FOUND);
  });
});

describe('task names are unique, and stay reserved after the task is gone', () => {
  test('a name in use is ALREADY_EXISTS', async () => {
    const queue = await newQueue({ paused: true });
    const name = `${queue}/tasks/only-once`;
    await h.client.createTask({ parent: queue, task: { name, httpRequest: { url: h.target.url() } } });
    const error = await errorOf(h.client.createTask({ parent: queue, task: { name, httpRequest: { url: h.target.url() } } }));
    expect(error.code).toBe(status.ALREADY_EXISTS);
    expect(error.details).toContain(name);
  });

  test('after delete and after completion the name is ALREADY_EXISTS', async () => {
    const queue = await newQueue();
    const deleted = `${queue}/tasks/deleted`;
    await h.client.pauseQueue({ name: queue });
    await h.client.createTask({ parent: queue, task: { name: deleted, httpRequest: { url: h.target.url() } } });
    await h.client.deleteTask({ name: deleted });
    expect(await codeOf(h.client.createTask({ parent: queue, task: { name: deleted, httpRequest: { url: h.target.url() } } }))).toBe(status.ALREADY_EXISTS);

    await h.client.resumeQueue({ name: queue });
    const done = `${queue}/tasks/done`;
    await h.client.createTask({ parent: queue, task: { name: done, httpRequest: { url: h.target.url('/done') } } });
    await h.emulator.idle({ queue });
    expect(h.target.requestsFor('done')).toHaveLength(1);
    const error = await errorOf(h.client.createTask({ parent: queue, task: { name: done, httpRequest: { url: h.target.url() } } }));
    expect(error.code).toBe(status.ALREADY_EXISTS);
    expect(error.details).toContain('cannot be reused yet');
  });

  test('with a short tombstoneMs the name can be used again once it expires', async () => {
    const emulator = await startCloudTasksEmulator({ tombstoneMs: 200 });
    const client = tasksClientFor(emulator);
    try {
      const parent = uniqueParent();
      const queue = `${parent}/queues/short-memory`;
      await client.createQueue({ parent, queue: { name: queue } });
      await client.pauseQueue({ name: queue });
      const name = `${queue}/tasks/reusable`;
      const task = { name, httpRequest: { url: h.target.url() } };
      await client.createTask({ parent: queue, task });
      await client.deleteTask({ name });
      expect(await codeOf(client.createTask({ parent: queue, task }))).toBe(status.ALREADY_EXISTS);
      await sleep(300);
      const [again] = await client.createTask({ parent: queue, task });
      expect(again.name).toBe(name);
    } finally {
      await client.close();
      await emulator.stop();
    }
  });
});

describe('RunTask', () => {
  test('dispatches at once, even in a paused queue, and returns the task as dispatched', async () => {
    const queue = await newQueue({ paused: true });
    const [task] = await h.client.createTask({
      parent: queue,
      task: { name: `${queue}/tasks/forced`, httpRequest: { url: h.target.url('/forced') } },
    });
    const [ran] = await h.client.runTask({ name: task.name });
    expect(ran.dispatchCount).toBe(1);
    expect(millis(ran.lastAttempt?.dispatchTime)).toBeGreaterThan(0);
    expect(millis(ran.firstAttempt?.dispatchTime)).toBe(millis(ran.lastAttempt?.dispatchTime));
    await h.emulator.idle({ queue });
    expect(h.target.requestsFor('forced')).toHaveLength(1);
    // Succeeded, so it is gone.
    expect(await codeOf(h.client.runTask({ name: task.name }))).toBe(status.NOT_FOUND);
  });

  test('a failed run leaves the task scheduled for a retry with the attempt recorded', async () => {
    const queue = await newQueue({ paused: true });
    h.target.respondWith((r) => (r.url === '/fails-once' && r.retryCount === 0 ? 500 : 200));
    try {
      const [task] = await h.client.createTask({ parent: queue, task: { httpRequest: { url: h.target.url('/fails-once') } } });
      await h.client.runTask({ name: task.name });
      await h.target.waitForRequests(1);
      // Wait for the outcome to be recorded (the queue is paused, so nothing else happens to the task).
      let after = (await h.client.getTask({ name: task.name }))[0];
      while (after.responseCount !== 1) {
        await sleep(20);
        after = (await h.client.getTask({ name: task.name }))[0];
      }
      expect(after.dispatchCount).toBe(1);
      expect(after.lastAttempt?.responseStatus?.code).toBe(status.INTERNAL);
      expect(after.lastAttempt?.responseStatus?.message).toContain('500');
      expect(millis(after.scheduleTime)).toBeGreaterThanOrEqual(millis(after.lastAttempt?.responseTime) + 50);

      await h.client.runTask({ name: task.name });
      await h.emulator.idle({ queue });
      expect(h.target.requests.filter((r) => r.url === '/fails-once').map((r) => r.retryCount)).toEqual([0, 1]);
    } finally {
      h.target.respondWith(() => 200);
    }
  });
});
