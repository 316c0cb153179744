import { status } from '@grpc/grpc-js';
import { startCloudTasksEmulator, type CloudTasksEmulator } from '../../emulator/cloud-tasks';
import {
  TaskDispatcher,
  createTasksClient,
  decodePayload,
  DEFAULT_QUEUE_SETTINGS,
  ensureQueue,
  parseQueuePath,
  SIGNATURE_HEADER,
  verifySignature,
  type SlicePayload,
  type TasksApi,
} from '../../src/executors/cloud-tasks';
import { isDsMigrateError } from '../../src/errors';
import { TargetServer } from '../cloud-tasks-emulator/support/target-server';

let emulator: CloudTasksEmulator;
let tasks: ReturnType<typeof createTasksClient>;
let target: TargetServer;
let queues = 0;
const SECRET = 'executor-test-secret-0123';

beforeAll(async () => {
  [emulator, target] = await Promise.all([startCloudTasksEmulator(), TargetServer.start()]);
  tasks = createTasksClient(emulator.host);
});
afterAll(async () => {
  await tasks.close();
  await emulator.stop();
  await target.close();
});

const newQueue = () => parseQueuePath(`projects/exec-test/locations/us-central1/queues/q${++queues}`);
const slice = (n: number): SlicePayload => ({ v: 2, type: 'slice', ns: '', run: 'run-x', migration: 'default:0001_a', step: 0, shard: 2, slice: n });

describe('the queue', () => {
  test('is created with our retry and rate settings, and found the second time', async () => {
    const queue = newQueue();
    expect(await ensureQueue(tasks, queue, DEFAULT_QUEUE_SETTINGS)).toEqual({ created: true, warnings: [] });
    const [q] = await tasks.getQueue({ name: queue.name });
    expect(q.retryConfig).toMatchObject({ maxAttempts: 100, maxDoublings: 5, minBackoff: { seconds: '1' }, maxBackoff: { seconds: '300' } });
    expect(q.rateLimits).toMatchObject({ maxDispatchesPerSecond: 500, maxConcurrentDispatches: 100 });
    expect(await ensureQueue(tasks, queue, DEFAULT_QUEUE_SETTINGS)).toEqual({ created: false, warnings: [] });
  });

  test('an existing queue keeps its settings; a paused one or a stingy one gets a warning', async () => {
    const queue = newQueue();
    await tasks.createQueue({ parent: `projects/${queue.project}/locations/${queue.location}`, queue: { name: queue.name, retryConfig: { maxAttempts: 3 } } });
    await tasks.pauseQueue({ name: queue.name });
    const { warnings } = await ensureQueue(tasks, queue, DEFAULT_QUEUE_SETTINGS);
    expect(warnings.join('\n')).toMatch(/is paused/);
    expect(warnings.join('\n')).toMatch(/only 3 attempt/);
  });

  test('missing permissions get an error that says what to grant', async () => {
    const denied = Object.assign(new Error('7 PERMISSION_DENIED: The principal lacks cloudtasks.queues.get'), { code: status.PERMISSION_DENIED });
    const api = { getQueue: () => Promise.reject(denied) } as unknown as TasksApi;
    const error = await ensureQueue(api, newQueue(), DEFAULT_QUEUE_SETTINGS).catch((e: unknown) => e);
    expect(isDsMigrateError(error, 'CLOUD_TASKS')).toBe(true);
    expect(String(error)).toMatch(/roles\/cloudtasks\.viewer/);

    const creating = { getQueue: () => Promise.reject(Object.assign(new Error('not found'), { code: status.NOT_FOUND })), createQueue: () => Promise.reject(denied) } as unknown as TasksApi;
    expect(String(await ensureQueue(creating, newQueue(), DEFAULT_QUEUE_SETTINGS).catch((e: unknown) => e))).toMatch(/gcloud tasks queues create q\d+ --location=us-central1/);

    const enqueuer = new TaskDispatcher({ createTask: () => Promise.reject(denied) } as unknown as TasksApi, {
      queue: newQueue().name,
      url: target.url(),
      auth: { kind: 'oidc', serviceAccountEmail: 'tasks@p.iam.gserviceaccount.com', audience: 'https://w' },
      dispatchDeadlineMs: 60_000,
    });
    expect(String(await enqueuer.enqueue(slice(0)).catch((e: unknown) => e))).toMatch(/roles\/iam\.serviceAccountUser\) on tasks@p\.iam/);
  });
});

describe('enqueuing', () => {
  test('a task carries the payload, its signature and the deadline; the same step twice is one task', async () => {
    const queue = newQueue();
    await ensureQueue(tasks, queue, DEFAULT_QUEUE_SETTINGS);
    await tasks.pauseQueue({ name: queue.name });
    const executor = new TaskDispatcher(tasks, { queue: queue.name, url: target.url('/w'), auth: { kind: 'hmac', secret: SECRET }, dispatchDeadlineMs: 120_000 });
    expect(await executor.enqueue(slice(0))).toBe('created');
    expect(await executor.enqueue(slice(0))).toBe('exists');
    const [task] = await tasks.getTask({ name: executor.taskName(slice(0)), responseView: 'FULL' });
    expect(task.dispatchDeadline).toMatchObject({ seconds: '120' });
    expect(task.httpRequest?.url).toBe(target.url('/w'));
    const body = Buffer.from(task.httpRequest!.body as Uint8Array);
    expect(decodePayload(body)).toEqual(slice(0));
    expect(verifySignature(SECRET, task.httpRequest!.headers![SIGNATURE_HEADER], body, { maxAgeMs: 60_000 })).toEqual({ ok: true });

    // Once it ran, its name stays taken: a late duplicate enqueue is still a no-op.
    await tasks.resumeQueue({ name: queue.name });
    await emulator.idle({ queue: queue.name });
    expect(target.requests.filter((r) => r.url === '/w')).toHaveLength(1);
    expect(await executor.enqueue(slice(0))).toBe('exists');
    expect(await executor.enqueue(slice(1))).toBe('created');
  });

  test('with OIDC the task asks Cloud Tasks for a token for the service account and audience', async () => {
    const queue = newQueue();
    await ensureQueue(tasks, queue, DEFAULT_QUEUE_SETTINGS);
    await tasks.pauseQueue({ name: queue.name });
    const executor = new TaskDispatcher(tasks, {
      queue: queue.name,
      url: target.url('/w'),
      auth: { kind: 'oidc', serviceAccountEmail: 'tasks@p.iam.gserviceaccount.com', audience: 'https://worker.example' },
      dispatchDeadlineMs: 60_000,
    });
    await executor.enqueue(slice(0));
    const [task] = await tasks.getTask({ name: executor.taskName(slice(0)), responseView: 'FULL' });
    expect(task.httpRequest?.oidcToken).toEqual({ serviceAccountEmail: 'tasks@p.iam.gserviceaccount.com', audience: 'https://worker.example' });
    expect(task.httpRequest?.headers?.[SIGNATURE_HEADER]).toBeUndefined();
  });
});
