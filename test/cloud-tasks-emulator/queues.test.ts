import { status } from '@grpc/grpc-js';
import { codeOf, errorOf, millis, seconds, sleep, startHarness, uniqueParent, type Harness } from './support/harness';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.close());

const httpTask = (url: string, name?: string) => ({ ...(name ? { name } : {}), httpRequest: { url } });

describe('queue CRUD', () => {
  test('CreateQueue fills in the Cloud Tasks defaults and GetQueue returns the same queue', async () => {
    const parent = uniqueParent();
    const [created] = await h.client.createQueue({ parent, queue: { name: `${parent}/queues/orders` } });
    expect(created.name).toBe(`${parent}/queues/orders`);
    expect(created.state).toBe('RUNNING');
    expect(created.rateLimits).toMatchObject({ maxDispatchesPerSecond: 500, maxConcurrentDispatches: 1000, maxBurstSize: 100 });
    expect(created.retryConfig?.maxAttempts).toBe(100);
    expect(created.retryConfig?.maxDoublings).toBe(16);
    expect(millis(created.retryConfig?.minBackoff)).toBe(100);
    expect(millis(created.retryConfig?.maxBackoff)).toBe(3_600_000);

    const [fetched] = await h.client.getQueue({ name: created.name });
    expect(fetched).toEqual(created);
  });

  test('explicit settings are kept', async () => {
    const parent = uniqueParent();
    const [queue] = await h.client.createQueue({
      parent,
      queue: {
        name: `${parent}/queues/tuned`,
        rateLimits: { maxDispatchesPerSecond: 5, maxConcurrentDispatches: 3 },
        retryConfig: { maxAttempts: -1, minBackoff: seconds(0.05), maxBackoff: seconds(2), maxDoublings: 3 },
      },
    });
    expect(queue.rateLimits).toMatchObject({ maxDispatchesPerSecond: 5, maxConcurrentDispatches: 3, maxBurstSize: 5 });
    expect(queue.retryConfig).toMatchObject({ maxAttempts: -1, maxDoublings: 3 });
    expect(millis(queue.retryConfig?.minBackoff)).toBe(50);
    expect(millis(queue.retryConfig?.maxBackoff)).toBe(2000);
  });

  test('errors: ALREADY_EXISTS, NOT_FOUND, INVALID_ARGUMENT with messages that name the problem', async () => {
    const parent = uniqueParent();
    const name = `${parent}/queues/q`;
    await h.client.createQueue({ parent, queue: { name } });

    const duplicate = await errorOf(h.client.createQueue({ parent, queue: { name } }));
    expect(duplicate.code).toBe(status.ALREADY_EXISTS);
    expect(duplicate.details).toContain(name);

    const missing = await errorOf(h.client.getQueue({ name: `${parent}/queues/nope` }));
    expect(missing.code).toBe(status.NOT_FOUND);
    expect(missing.details).toContain('queues/nope');

    expect(await codeOf(h.client.createQueue({ parent, queue: { name: `${parent}/queues/bad_id` } }))).toBe(status.INVALID_ARGUMENT);
    expect(await codeOf(h.client.createQueue({ parent, queue: { name: `${uniqueParent()}/queues/elsewhere` } }))).toBe(status.INVALID_ARGUMENT);
    const tooFast = await errorOf(h.client.createQueue({ parent, queue: { name: `${parent}/queues/fast`, rateLimits: { maxDispatchesPerSecond: 501 } } }));
    expect(tooFast.code).toBe(status.INVALID_ARGUMENT);
    expect(tooFast.details).toContain('max_dispatches_per_second');
    expect(
      await codeOf(
        h.client.createQueue({
          parent,
          queue: { name: `${parent}/queues/backwards`, retryConfig: { minBackoff: seconds(10), maxBackoff: seconds(1) } },
        }),
      ),
    ).toBe(status.INVALID_ARGUMENT);
  });

  test('ListQueues pages in name order, stays within the parent and filters by state', async () => {
    const parent = uniqueParent();
    const ids = ['e', 'a', 'd', 'b', 'c'];
    for (const id of ids) await h.client.createQueue({ parent, queue: { name: `${parent}/queues/${id}` } });
    const other = uniqueParent();
    await h.client.createQueue({ parent: other, queue: { name: `${other}/queues/a` } });

    const seen: string[] = [];
    let pageToken = '';
    let pages = 0;
    do {
      const [queues, , response] = await h.client.listQueues({ parent, pageSize: 2, pageToken }, { autoPaginate: false });
      seen.push(...queues.map((q) => q.name ?? ''));
      pageToken = response?.nextPageToken ?? '';
      pages += 1;
    } while (pageToken);
    expect(seen).toEqual(['a', 'b', 'c', 'd', 'e'].map((id) => `${parent}/queues/${id}`));
    expect(pages).toBe(3);

    const [all] = await h.client.listQueues({ parent });
    expect(all).toHaveLength(5);

    await h.client.pauseQueue({ name: `${parent}/queues/c` });
    const [paused] = await h.client.listQueues({ parent, filter: 'state: PAUSED' });
    expect(paused.map((q) => q.name)).toEqual([`${parent}/queues/c`]);
    expect(await codeOf(h.client.listQueues({ parent, filter: 'name: x' }))).toBe(status.INVALID_ARGUMENT);
  });

  test('UpdateQueue changes only the masked fields, rejects output-only and unknown ones, and creates missing queues', async () => {
    const parent = uniqueParent();
    const name = `${parent}/queues/q`;
    await h.client.createQueue({
      parent,
      queue: { name, rateLimits: { maxDispatchesPerSecond: 20 }, retryConfig: { maxAttempts: 7 } },
    });

    const [updated] = await h.client.updateQueue({
      queue: { name, rateLimits: { maxConcurrentDispatches: 4, maxDispatchesPerSecond: 1 }, retryConfig: { maxAttempts: 9 } },
      updateMask: { paths: ['rate_limits.max_concurrent_dispatches'] },
    });
    expect(updated.rateLimits).toMatchObject({ maxConcurrentDispatches: 4, maxDispatchesPerSecond: 20 });
    expect(updated.retryConfig?.maxAttempts).toBe(7);

    const [retry] = await h.client.updateQueue({
      queue: { name, retryConfig: { maxAttempts: 3, minBackoff: seconds(1) } },
      updateMask: { paths: ['retryConfig'] },
    });
    // The whole group is replaced: unset members go back to their defaults.
    expect(retry.retryConfig).toMatchObject({ maxAttempts: 3, maxDoublings: 16 });
    expect(millis(retry.retryConfig?.minBackoff)).toBe(1000);
    expect(retry.rateLimits?.maxConcurrentDispatches).toBe(4);

    const [fetched] = await h.client.getQueue({ name });
    expect(fetched).toEqual(retry);

    for (const path of ['state', 'rate_limits.max_burst_size', 'no_such_field']) {
      const error = await errorOf(h.client.updateQueue({ queue: { name }, updateMask: { paths: [path] } }));
      expect(error.code).toBe(status.INVALID_ARGUMENT);
    }

    const [created] = await h.client.updateQueue({
      queue: { name: `${parent}/queues/fresh`, rateLimits: { maxDispatchesPerSecond: 2 } },
      updateMask: { paths: ['rate_limits.max_dispatches_per_second'] },
    });
    expect(created.rateLimits?.maxDispatchesPerSecond).toBe(2);
    expect((await h.client.getQueue({ name: `${parent}/queues/fresh` }))[0].state).toBe('RUNNING');
  });

  test('DeleteQueue removes the queue and its tasks', async () => {
    const parent = uniqueParent();
    const name = `${parent}/queues/doomed`;
    await h.client.createQueue({ parent, queue: { name } });
    await h.client.pauseQueue({ name });
    await h.client.createTask({ parent: name, task: httpTask(h.target.url()) });
    await h.client.deleteQueue({ name });
    expect(await codeOf(h.client.getQueue({ name }))).toBe(status.NOT_FOUND);
    expect(await codeOf(h.client.deleteQueue({ name }))).toBe(status.NOT_FOUND);
    expect(await codeOf(h.client.createTask({ parent: name, task: httpTask(h.target.url()) }))).toBe(status.NOT_FOUND);
  });
});

describe('pause, resume, purge', () => {
  test('a paused queue keeps its tasks; resuming dispatches them', async () => {
    const parent = uniqueParent();
    const name = `${parent}/queues/pausable`;
    await h.client.createQueue({ parent, queue: { name } });
    const [paused] = await h.client.pauseQueue({ name });
    expect(paused.state).toBe('PAUSED');
    const [task] = await h.client.createTask({ parent: name, task: httpTask(h.target.url('/paused')) });

    await sleep(300);
    expect(h.target.requests.filter((r) => r.url === '/paused')).toHaveLength(0);
    const [listed] = await h.client.listTasks({ parent: name });
    expect(listed.map((t) => t.name)).toEqual([task.name]);

    const [resumed] = await h.client.resumeQueue({ name });
    expect(resumed.state).toBe('RUNNING');
    await h.emulator.idle({ queue: name });
    expect(h.target.requests.filter((r) => r.url === '/paused')).toHaveLength(1);
  });

  test('PurgeQueue removes every task, sets purge_time, and reserves the purged names', async () => {
    const parent = uniqueParent();
    const name = `${parent}/queues/purgeable`;
    await h.client.createQueue({ parent, queue: { name } });
    await h.client.pauseQueue({ name });
    for (let i = 0; i < 3; i++) {
      await h.client.createTask({ parent: name, task: httpTask(h.target.url('/purged'), `${name}/tasks/t${i}`) });
    }
    const before = Date.now();
    const [purged] = await h.client.purgeQueue({ name });
    expect(millis(purged.purgeTime)).toBeGreaterThanOrEqual(before - 1);
    expect(purged.state).toBe('PAUSED');
    expect((await h.client.listTasks({ parent: name }))[0]).toHaveLength(0);
    expect(await codeOf(h.client.getTask({ name: `${name}/tasks/t0` }))).toBe(status.NOT_FOUND);
    expect(await codeOf(h.client.createTask({ parent: name, task: httpTask(h.target.url(), `${name}/tasks/t1`) }))).toBe(status.ALREADY_EXISTS);

    await h.client.resumeQueue({ name });
    await h.emulator.idle({ queue: name });
    expect(h.target.requests.filter((r) => r.url === '/purged')).toHaveLength(0);
  });

  test('pause, resume and purge of a missing queue are NOT_FOUND', async () => {
    const name = `${uniqueParent()}/queues/ghost`;
    expect(await codeOf(h.client.pauseQueue({ name }))).toBe(status.NOT_FOUND);
    expect(await codeOf(h.client.resumeQueue({ name }))).toBe(status.NOT_FOUND);
    expect(await codeOf(h.client.purgeQueue({ name }))).toBe(status.NOT_FOUND);
  });
});

test('IAM methods are UNIMPLEMENTED', async () => {
  const parent = uniqueParent();
  const name = `${parent}/queues/iam`;
  await h.client.createQueue({ parent, queue: { name } });
  const error = await errorOf(h.client.getIamPolicy({ resource: name }));
  expect(error.code).toBe(status.UNIMPLEMENTED);
  expect(error.details).toContain('not supported');
  expect(await codeOf(h.client.testIamPermissions({ resource: name, permissions: ['cloudtasks.tasks.create'] }))).toBe(status.UNIMPLEMENTED);
});
