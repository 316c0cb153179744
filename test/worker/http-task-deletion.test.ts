import type { CloudTasksClient } from '@google-cloud/tasks';
import { startCloudTasksEmulator, tasksClientFor, type CloudTasksEmulator } from '../../emulator/cloud-tasks';
import { parseQueuePath, signBody, SIGNATURE_HEADER, type QueuePath } from '../../src/executors/cloud-tasks';
import { hmacAuthenticator } from '../../src/worker/auth';
import { createWorkerHandler, type WorkerHandlerOptions, type WorkerLogEntry } from '../../src/worker/handler';
import { startWorkerServer, type WorkerServer } from '../../src/worker/server';

const SECRET = 'task-deletion-test-secret-0123';
const LOCATION = `projects/p-${process.pid}/locations/us-central1`;
/** The worker's queue, and another queue of the same project whose tasks the worker also accepts. */
const CONFIGURED: QueuePath = parseQueuePath(`${LOCATION}/queues/dsm-tasks`);
const OTHER: QueuePath = parseQueuePath(`${LOCATION}/queues/other-queue`);
/** Never a task of ours: the payload decoder rejects it, so the worker answers 400 and tries to delete it. */
const BAD = Buffer.from('{"v":1,"type":"slice","run":"x"}');

let emulator: CloudTasksEmulator;
let tasks: CloudTasksClient;
let worker: WorkerServer;
const log: WorkerLogEntry[] = [];
const ran = jest.fn();

beforeAll(async () => {
  emulator = await startCloudTasksEmulator();
  tasks = tasksClientFor(emulator);
  const pipeline = { run: ran } as unknown as WorkerHandlerOptions['pipeline'];
  worker = await startWorkerServer(createWorkerHandler({ pipeline, authenticator: hmacAuthenticator(SECRET, 3_600_000), tasks, queue: CONFIGURED, log: (e) => log.push(e) }), {
    port: 0,
    host: '127.0.0.1',
  });
  // The configured queue retries fast, so that a task not deleted would show as a second dispatch; the
  // other waits an hour after a failed attempt, so that a task not deleted is still there to list.
  await tasks.createQueue({ parent: LOCATION, queue: { name: CONFIGURED.name, retryConfig: { minBackoff: { nanos: 50e6 }, maxBackoff: { nanos: 50e6 } } } });
  await tasks.createQueue({ parent: LOCATION, queue: { name: OTHER.name, retryConfig: { minBackoff: { seconds: 3600 }, maxBackoff: { seconds: 3600 } } } });
});

afterAll(async () => {
  await worker.close(1_000);
  await tasks.close();
  await emulator.stop();
});

async function createBadTask(queue: QueuePath): Promise<string> {
  const [task] = await tasks.createTask({ parent: queue.name, task: { httpRequest: { url: worker.url, httpMethod: 'POST', body: BAD, headers: { [SIGNATURE_HEADER]: signBody(SECRET, BAD) } } } });
  return task.name!;
}

async function logEntryFor(taskName: string, timeoutMs = 15_000): Promise<WorkerLogEntry> {
  const taskId = taskName.slice(taskName.lastIndexOf('/') + 1);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const entry = log.find((e) => e.task === taskId);
    if (entry) return entry;
    if (Date.now() > deadline) throw new Error(`no log entry for ${taskName}: ${JSON.stringify(log)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('a bad task of the configured queue is deleted during its dispatch, so it is not retried', async () => {
  const dispatchesBefore = emulator.stats().dispatches;
  const name = await createBadTask(CONFIGURED);
  await emulator.idle({ queue: CONFIGURED.name });
  await new Promise((r) => setTimeout(r, 300)); // a retry, if any, would be due by now
  await emulator.idle({ queue: CONFIGURED.name });
  expect(emulator.stats().dispatches - dispatchesBefore).toBe(1);
  expect((await tasks.listTasks({ parent: CONFIGURED.name }))[0]).toHaveLength(0);
  expect(await logEntryFor(name)).toMatchObject({ severity: 'ERROR', status: 400, message: expect.stringContaining(`; deleted task ${name} so that it is not retried`) });
});

test('a bad task of another queue is answered 400 but not deleted: it is still in the emulator', async () => {
  const name = await createBadTask(OTHER);
  const entry = await logEntryFor(name);
  expect(entry).toMatchObject({ severity: 'ERROR', status: 400 });
  expect(entry.message).toContain(`refused to delete task "${name.slice(name.lastIndexOf('/') + 1)}": its queue "other-queue" is not the configured ${CONFIGURED.name}`);
  const [task] = await tasks.getTask({ name });
  expect(task).toMatchObject({ name, dispatchCount: 1 });
  expect((await tasks.listTasks({ parent: OTHER.name }))[0].map((t) => t.name)).toEqual([name]);
});

test('a task name that is a path into another queue is refused, whatever the queue header says', async () => {
  const [target] = (await tasks.listTasks({ parent: OTHER.name }))[0];
  const forgedId = `../../${OTHER.queue}/tasks/${target.name!.slice(target.name!.lastIndexOf('/') + 1)}`;
  log.length = 0;
  const response = await fetch(worker.url, {
    method: 'POST',
    body: BAD,
    headers: { [SIGNATURE_HEADER]: signBody(SECRET, BAD), 'X-CloudTasks-QueueName': CONFIGURED.queue, 'X-CloudTasks-TaskName': forgedId },
  });
  expect(response.status).toBe(400);
  expect(log).toEqual([expect.objectContaining({ status: 400, task: forgedId, message: expect.stringContaining(`refused to delete task ${JSON.stringify(forgedId)}: not a task id`) })]);
  expect((await tasks.listTasks({ parent: OTHER.name }))[0].map((t) => t.name)).toEqual([target.name]);
});

test('no bad payload reached the pipeline', () => {
  expect(ran).not.toHaveBeenCalled();
});
