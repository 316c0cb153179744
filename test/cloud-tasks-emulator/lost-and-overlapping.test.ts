import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import type { protos } from '@google-cloud/tasks';
import { seededRandom, tasksClientFor } from '../../emulator/cloud-tasks';
import { createTasks, withFaultyQueue } from './support/faulty-queue';
import { codeOf, millis, seconds, sleep, uniqueParent, type Harness } from './support/harness';
import { TargetServer } from './support/target-server';

type Task = protos.google.cloud.tasks.v2.ITask;

/** Polls the task until `done` holds for it: for states between attempts, which no event announces. */
async function taskWhen(h: Harness, name: string, done: (task: Task) => boolean, what: string): Promise<Task> {
  for (let tries = 0; tries < 1000; tries += 1) {
    const [task] = await h.client.getTask({ name });
    if (done(task)) return task;
    await sleep(10);
  }
  throw new Error(`task ${name}: timed out waiting for ${what}`);
}

const answered =
  (attempts: number) =>
  (task: Task): boolean =>
    Number(task.dispatchCount) === attempts && task.lastAttempt?.responseTime != null;

async function expectGone(h: Harness, queue: string, ids: readonly string[]): Promise<void> {
  expect((await h.client.listTasks({ parent: queue }))[0]).toHaveLength(0);
  for (const id of ids) expect(await codeOf(h.client.getTask({ name: `${queue}/tasks/${id}` }))).toBe(status.NOT_FOUND);
}

/**
 * While either newer fault is on, every dispatch draws four numbers in turn (fail, duplicate, lost
 * answer, overlapping duplicate), so the counts a seed gives do not depend on the dispatch order.
 */
function predict(seed: number, tasks: number, lostAnswerFraction: number, overlappingFraction: number): { lostAnswers: number; overlapping: number } {
  const random = seededRandom(seed);
  let done = 0;
  let lostAnswers = 0;
  let overlapping = 0;
  while (done < tasks) {
    random(); // fail
    random(); // duplicate
    const lost = random() < lostAnswerFraction;
    if (random() < overlappingFraction) overlapping += 1;
    if (lost) lostAnswers += 1;
    else done += 1;
  }
  return { lostAnswers, overlapping };
}

describe('lostAnswerFraction', () => {
  test('the target answered 200, the queue hears of a missed deadline and sends the task again', async () => {
    // fail, duplicate, lost answer, overlapping duplicate: lose the first answer, let the rest through.
    const draws = [0.9, 0.9, 0.1, 0.9];
    await withFaultyQueue({ lostAnswerFraction: 0.5, random: () => draws.shift() ?? 0.9 }, async (h, queue) => {
      const ids = await createTasks(h, queue, 1);
      await h.emulator.idle({ queue });
      const [first, second] = h.target.requestsFor('t0');
      expect(h.target.requests).toHaveLength(2);
      expect(first?.retryCount).toBe(0);
      expect(second?.retryCount).toBe(1);
      // No answer reached the queue: no previous response, no execution counted, a deadline as reason.
      expect(second?.headers['x-cloudtasks-taskexecutioncount']).toBe('0');
      expect(second?.headers['x-cloudtasks-taskpreviousresponse']).toBeUndefined();
      expect(second?.headers['x-cloudtasks-taskretryreason']).toMatch(/^dispatch deadline exceeded .*answered HTTP 200.*lost/);
      expect(h.emulator.stats()).toEqual({
        dispatches: 2,
        successes: 1,
        failures: 1,
        injectedFailures: 0,
        lostAnswers: 1,
        timeouts: 0,
        duplicates: 0,
        overlappingDuplicates: 0,
        dropped: 0,
        requestsSent: 2,
      });
      await expectGone(h, queue, ids);
    });
  });

  test('that share of answers is lost; every task comes back once per lost answer and is deleted in the end', async () => {
    const expected = predict(5, 20, 0.5, 0);
    expect(expected.lostAnswers).toBeGreaterThan(0);
    await withFaultyQueue({ seed: 5, lostAnswerFraction: 0.5 }, async (h, queue) => {
      const ids = await createTasks(h, queue, 20);
      await h.emulator.idle({ queue });
      expect(h.target.requests).toHaveLength(20 + expected.lostAnswers);
      for (const id of ids) {
        const retryCounts = h.target.requestsFor(id).map((r) => r.retryCount);
        expect(retryCounts).toEqual(retryCounts.map((_, i) => i));
      }
      expect(h.emulator.stats()).toMatchObject({ successes: 20, failures: expected.lostAnswers, lostAnswers: expected.lostAnswers, dropped: 0 });
      await expectGone(h, queue, ids);
    });
  });

  test("a lost answer is retried after the queue's backoff, which doubles as for any failure", async () => {
    const retryConfig = { maxAttempts: -1, minBackoff: seconds(100), maxBackoff: seconds(1000) };
    await withFaultyQueue(
      { lostAnswerFraction: 1 },
      async (h, queue) => {
        const [name] = (await createTasks(h, queue, 1)).map((id) => `${queue}/tasks/${id}`);
        const backoffAfter = async (attempts: number): Promise<number> => {
          const task = await taskWhen(h, name!, answered(attempts), `attempt ${attempts} to end`);
          expect(task.responseCount).toBe(0);
          expect(task.lastAttempt?.responseStatus?.code).toBe(status.DEADLINE_EXCEEDED);
          return millis(task.scheduleTime) - millis(task.lastAttempt?.responseTime);
        };
        expect(await backoffAfter(1)).toBe(100_000);
        await h.client.runTask({ name }); // instead of waiting out the backoff
        expect(await backoffAfter(2)).toBe(200_000);

        h.emulator.setFaults({ lostAnswerFraction: 0 });
        await h.client.runTask({ name });
        await h.emulator.idle({ queue });
        expect(h.target.requestsFor('t0').map((r) => r.retryCount)).toEqual([0, 1, 2]);
        expect(h.emulator.stats()).toMatchObject({ dispatches: 3, successes: 1, lostAnswers: 2 });
        await expectGone(h, queue, ['t0']);
      },
      { retryConfig },
    );
  });

  test('a task whose answers are always lost is dropped after max_attempts, although the target did its work each time', async () => {
    await withFaultyQueue(
      { lostAnswerFraction: 1 },
      async (h, queue) => {
        const ids = await createTasks(h, queue, 2);
        await h.emulator.idle({ queue });
        for (const id of ids) expect(h.target.requestsFor(id).map((r) => r.retryCount)).toEqual([0, 1, 2]);
        expect(h.emulator.stats()).toMatchObject({ dispatches: 6, successes: 0, lostAnswers: 6, dropped: 2, requestsSent: 6 });
        await expectGone(h, queue, ids);
      },
      { retryConfig: { maxAttempts: 3 } },
    );
  });

  test('an answer that is not 2xx is not "lost": the attempt fails as the target said', async () => {
    await withFaultyQueue(
      { lostAnswerFraction: 1 },
      async (h, queue) => {
        h.target.respondWith(() => 500);
        await createTasks(h, queue, 1);
        await h.emulator.idle({ queue });
        expect(h.target.requestsFor('t0')[1]?.headers['x-cloudtasks-taskpreviousresponse']).toBe('500');
        expect(h.emulator.stats()).toMatchObject({ dispatches: 2, failures: 2, lostAnswers: 0, dropped: 1 });
      },
      { retryConfig: { maxAttempts: 2 } },
    );
  });
});

describe('overlappingDuplicateFraction', () => {
  test('the duplicate arrives while the first delivery is still being served, even at max_concurrent_dispatches 1', async () => {
    // fail, duplicate, lost answer, overlapping duplicate: the first dispatch is sent twice at once.
    const draws = [0.9, 0.9, 0.9, 0.1];
    await withFaultyQueue(
      { overlappingDuplicateFraction: 0.5, random: () => draws.shift() ?? 0.9 },
      async (h, queue) => {
        // Neither delivery is answered until both have arrived: without an overlap this would never
        // happen, the first delivery's wait would time out and the test would fail below.
        h.target.respondWith((r) => h.target.waitUntil(() => h.target.requestsFor(r.taskId).length >= 2, 'the overlapping duplicate').then(() => 200));
        const ids = await createTasks(h, queue, 1);
        await h.emulator.idle({ queue });
        const [one, other] = h.target.requestsFor('t0');
        expect(h.target.requests).toHaveLength(2);
        expect(h.target.maxInFlight).toBe(2);
        expect(other?.headers).toEqual(one?.headers);
        expect(other?.body).toBe(one?.body);
        expect(h.emulator.stats()).toEqual({
          dispatches: 1,
          successes: 1,
          failures: 0,
          injectedFailures: 0,
          lostAnswers: 0,
          timeouts: 0,
          duplicates: 0,
          overlappingDuplicates: 1,
          dropped: 0,
          requestsSent: 2,
        });
        await expectGone(h, queue, ids);
      },
      { rateLimits: { maxConcurrentDispatches: 1 } },
    );
  });

  test('that share of dispatches is sent twice', async () => {
    const expected = predict(9, 20, 0, 0.5);
    expect(expected.overlapping).toBeGreaterThan(0);
    await withFaultyQueue({ seed: 9, overlappingDuplicateFraction: 0.5 }, async (h, queue) => {
      const ids = await createTasks(h, queue, 20);
      await h.emulator.idle({ queue });
      expect(ids.filter((id) => h.target.requestsFor(id).length === 2)).toHaveLength(expected.overlapping);
      expect(ids.every((id) => [1, 2].includes(h.target.requestsFor(id).length))).toBe(true);
      expect(h.emulator.stats()).toMatchObject({ dispatches: 20, successes: 20, overlappingDuplicates: expected.overlapping, requestsSent: 20 + expected.overlapping });
      await expectGone(h, queue, ids);
    });
  });

  test('a dispatch failed by injection is not sent at all, so it has no duplicate either', async () => {
    await withFaultyQueue(
      { failFraction: 1, overlappingDuplicateFraction: 1 },
      async (h, queue) => {
        await createTasks(h, queue, 1);
        await h.emulator.idle({ queue });
        expect(h.target.requests).toHaveLength(0);
        expect(h.emulator.stats()).toMatchObject({ dispatches: 2, injectedFailures: 2, overlappingDuplicates: 0, dropped: 1, requestsSent: 0 });
      },
      { retryConfig: { maxAttempts: 2 } },
    );
  });
});

describe('npm run emulator flags', () => {
  const root = path.resolve(__dirname, '..', '..');
  const startCli = (args: string[]): { child: ChildProcessWithoutNullStreams; exited: Promise<number | null>; stderr: () => string } => {
    const child = spawn(path.join(root, 'node_modules', '.bin', 'tsx'), ['src/cli/main.ts', 'emulator', '--no-datastore', ...args], { cwd: root });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    return { child, exited: new Promise((resolve) => child.on('exit', (code) => resolve(code))), stderr: () => stderr };
  };

  test('--lost-answer-fraction and --overlapping-duplicate-fraction reach the emulator', async () => {
    const cli = startCli(['--lost-answer-fraction', '1', '--overlapping-duplicate-fraction', '1', '--seed', '1']);
    const target = await TargetServer.start();
    try {
      const host = await new Promise<string>((resolve, reject) => {
        let output = '';
        cli.child.stdout.on('data', (chunk: Buffer) => {
          output += chunk.toString();
          const match = /^export CLOUD_TASKS_EMULATOR_HOST=(\S+)$/m.exec(output);
          if (match?.[1]) resolve(match[1]);
        });
        cli.child.on('exit', (code) => reject(new Error(`CLI exited early with ${code}: ${output}${cli.stderr()}`)));
      });
      const client = tasksClientFor(host);
      const parent = uniqueParent();
      const queue = `${parent}/queues/flags`;
      await client.createQueue({ parent, queue: { name: queue, retryConfig: { maxAttempts: 2, minBackoff: seconds(0.01), maxBackoff: seconds(0.01) } } });
      await client.createTask({ parent: queue, task: { name: `${queue}/tasks/t0`, httpRequest: { url: target.url() } } });
      // Two attempts, each sent twice at once and answered 200, each answer lost: then dropped.
      await target.waitForRequests(4);
      const task = `${queue}/tasks/t0`;
      for (let tries = 0; (await codeOf(client.getTask({ name: task }))) !== status.NOT_FOUND; tries += 1) {
        if (tries > 1000) throw new Error('the task was never dropped');
        await sleep(10);
      }
      expect(
        target
          .requestsFor('t0')
          .map((r) => r.retryCount)
          .sort(),
      ).toEqual([0, 0, 1, 1]);
      await client.close();
    } finally {
      cli.child.kill('SIGTERM');
      await target.close();
    }
    expect(await cli.exited).toBe(0);
  });

  test('a fraction out of range is refused with exit code 2', async () => {
    const cli = startCli(['--overlapping-duplicate-fraction', '2']);
    expect(await cli.exited).toBe(2);
    expect(cli.stderr()).toMatch(/--overlapping-duplicate-fraction takes a fraction between 0 and 1, not "2"/);
  });
});
