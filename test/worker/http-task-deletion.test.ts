import type { CloudTasksClient } from '@google-cloud/tasks';
import { startCloudTasksEmulator, tasksClientFor, type CloudTasksEmulator } from '../../emulator/cloud-tasks';
import type { Datastore } from '../../src/datastore';
import { MalformedPayloadError, parseQueuePath, resolveWorkerSettings, signBody, SIGNATURE_HEADER, type QueuePath, type TaskPayload } from '../../src/executors/cloud-tasks';
import { buildGraph } from '../../src/migrations';
import { startWorker, type RunningWorker } from '../../src/worker';
import { hmacAuthenticator } from '../../src/worker/auth';
import { createWorkerHandler, type WorkerHandlerOptions, type WorkerLogEntry } from '../../src/worker/handler';
import { startWorkerServer, type WorkerServer } from '../../src/worker/server';

/**
 * The worker never deletes a task: the X-CloudTasks-* headers that would name one are covered by no
 * signature or token. A signed task it can never run is answered 2xx, "dropped", and Cloud Tasks removes
 * it as after any success.
 */
const SECRET = 'task-deletion-test-secret-0123';
const LOCATION = `projects/p-${process.pid}/locations/us-central1`;
const QUEUE: QueuePath = parseQueuePath(`${LOCATION}/queues/dsm-tasks`);
/** A queue that dispatches nothing: its tasks stay there for a forged header to name. */
const PAUSED: QueuePath = parseQueuePath(`${LOCATION}/queues/paused`);
/** Never a task of ours: the payload decoder refuses it. */
const BAD = Buffer.from('{"v":1,"type":"slice","run":"x"}');
/** A task of ours by its shape, which the pipeline refuses (it names a migration its run does not have). */
const FOREIGN: TaskPayload = { v: 2, type: 'slice', ns: '', run: 'run-1', migration: 'default:9999_nope', step: 0, shard: 0, slice: 0 };

let emulator: CloudTasksEmulator;
let tasks: CloudTasksClient;
let worker: WorkerServer;
const log: WorkerLogEntry[] = [];
const ran = jest.fn(async (payload: TaskPayload) => {
  throw new MalformedPayloadError(`run ${payload.run} has no migration ${payload.migration}`);
});

beforeAll(async () => {
  emulator = await startCloudTasksEmulator();
  tasks = tasksClientFor(emulator);
  const pipeline = { run: ran } as unknown as WorkerHandlerOptions['pipeline'];
  worker = await startWorkerServer(createWorkerHandler({ pipeline, authenticator: hmacAuthenticator(SECRET, 3_600_000), log: (e) => log.push(e) }), { port: 0, host: '127.0.0.1' });
  // Retries come fast, so that a task answered with anything but 2xx would show as a second dispatch.
  await tasks.createQueue({ parent: LOCATION, queue: { name: QUEUE.name, retryConfig: { minBackoff: { nanos: 50e6 }, maxBackoff: { nanos: 50e6 } } } });
  await tasks.createQueue({ parent: LOCATION, queue: { name: PAUSED.name } });
  await tasks.pauseQueue({ name: PAUSED.name });
});

afterAll(async () => {
  await worker.close(1_000);
  await tasks.close();
  await emulator.stop();
});

async function createTask(queue: QueuePath, body: Buffer): Promise<string> {
  const [task] = await tasks.createTask({ parent: queue.name, task: { httpRequest: { url: worker.url, httpMethod: 'POST', body, headers: { [SIGNATURE_HEADER]: signBody(SECRET, body) } } } });
  return task.name!;
}

const idOf = (name: string): string => name.slice(name.lastIndexOf('/') + 1);
const queued = async (queue: QueuePath): Promise<string[]> => (await tasks.listTasks({ parent: queue.name }))[0].map((t) => t.name!);

async function logEntryFor(taskName: string, timeoutMs = 15_000): Promise<WorkerLogEntry> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const entry = log.find((e) => e.task === idOf(taskName));
    if (entry) return entry;
    if (Date.now() > deadline) throw new Error(`no log entry for ${taskName}: ${JSON.stringify(log)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test.each([
  ['a body that is not a task payload', BAD, /^dropped: Malformed task payload: unknown version 1/],
  ['a task the pipeline refuses', Buffer.from(JSON.stringify(FOREIGN)), /^dropped: Malformed task payload: run run-1 has no migration default:9999_nope/],
])('%s, signed, is answered 200 "dropped" once, and Cloud Tasks removes it as after a success', async (_, body, message) => {
  const dispatchesBefore = emulator.stats().dispatches;
  const name = await createTask(QUEUE, body);
  await emulator.idle({ queue: QUEUE.name });
  await new Promise((r) => setTimeout(r, 300)); // a retry, if any, would be due by now
  await emulator.idle({ queue: QUEUE.name });
  expect(emulator.stats().dispatches - dispatchesBefore).toBe(1);
  expect(await queued(QUEUE)).toEqual([]);
  expect(await logEntryFor(name)).toMatchObject({ severity: 'ERROR', status: 200, message: expect.stringMatching(message) });
});

test('the answer to a bad payload says it was dropped, and why', async () => {
  const response = await fetch(worker.url, { method: 'POST', body: BAD, headers: { [SIGNATURE_HEADER]: signBody(SECRET, BAD) } });
  expect(response.status).toBe(200);
  expect(await response.json()).toEqual({ result: 'dropped', message: expect.stringMatching(/^dropped: Malformed task payload: unknown version 1/) });
});

/**
 * The whole worker, with a Cloud Tasks client that could delete and an environment that names the queue
 * (DSMIGRATE_TASKS_QUEUE), as the one that would have deleted the task its headers named.
 */
describe('a request whose headers name another task deletes nothing', () => {
  let victim: string;
  let full: RunningWorker;
  let deleted: jest.SpyInstance;
  beforeAll(async () => {
    const settings = resolveWorkerSettings({ queue: PAUSED.name }, { DSMIGRATE_WORKER_SECRET: SECRET, CLOUD_TASKS_EMULATOR_HOST: emulator.host });
    deleted = jest.spyOn(tasks, 'deleteTask');
    // The bad requests below never get past decoding: no store is read.
    full = await startWorker({ store: {} as Datastore, graph: buildGraph([]), settings, tasks, log: (e) => log.push(e) });
    victim = await createTask(PAUSED, Buffer.from('{}'));
  });
  afterAll(async () => {
    await full.stop(1_000);
  });

  test.each([
    ['signed', true, 200],
    ['unsigned', false, 401],
  ])('%s', async (_, signed, status) => {
    for (const taskHeader of [idOf(victim), victim, `../../${PAUSED.queue}/tasks/${idOf(victim)}`]) {
      const headers: Record<string, string> = { 'X-CloudTasks-QueueName': PAUSED.queue, 'X-CloudTasks-TaskName': taskHeader };
      if (signed) headers[SIGNATURE_HEADER] = signBody(SECRET, BAD);
      expect((await fetch(full.url, { method: 'POST', body: BAD, headers })).status).toBe(status);
    }
    expect(deleted).not.toHaveBeenCalled();
    expect(await queued(PAUSED)).toEqual([victim]);
    expect((await tasks.getTask({ name: victim }))[0]).toMatchObject({ name: victim, dispatchCount: 0 });
  });
});

test('no bad payload reached the pipeline', () => {
  expect(ran.mock.calls.map(([payload]) => payload)).toEqual(expect.arrayContaining([FOREIGN]));
  expect(ran.mock.calls.every(([payload]) => payload.migration === FOREIGN.migration)).toBe(true);
});
