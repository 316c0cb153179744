import { seededRandom } from '../../emulator/cloud-tasks';
import { seconds, uniqueParent } from './support/harness';
import { createTasks, withFaultyQueue } from './support/faulty-queue';

/**
 * Every dispatch draws two numbers (fail, duplicate) in turn, so how many injected failures and
 * duplicates a seed produces does not depend on the order in which dispatches happen.
 */
function predict(seed: number, tasks: number, failFraction: number, duplicateFraction: number): { failures: number; duplicates: number } {
  const random = seededRandom(seed);
  let successes = 0;
  let failures = 0;
  let duplicates = 0;
  while (successes < tasks) {
    const fail = random() < failFraction;
    const duplicate = random() < duplicateFraction;
    if (fail) failures += 1;
    else {
      successes += 1;
      if (duplicate) duplicates += 1;
    }
  }
  return { failures, duplicates };
}

test('failFraction: that share of dispatches fails without being sent, and every task still arrives exactly once', async () => {
  const expected = predict(7, 20, 0.5, 0);
  expect(expected.failures).toBeGreaterThan(0);
  await withFaultyQueue({ seed: 7, failFraction: 0.5 }, async (h, queue) => {
    const ids = await createTasks(h, queue, 20);
    await h.emulator.idle({ queue });
    for (const id of ids) expect(h.target.requestsFor(id)).toHaveLength(1);
    expect(h.emulator.stats()).toEqual({
      dispatches: 20 + expected.failures,
      successes: 20,
      failures: expected.failures,
      injectedFailures: expected.failures,
      lostAnswers: 0,
      timeouts: 0,
      duplicates: 0,
      overlappingDuplicates: 0,
      dropped: 0,
      requestsSent: 20,
    });
    // A task whose earlier attempts were injected failures learns of them as 503s.
    const retried = h.target.requests.filter((r) => r.retryCount > 0);
    expect(retried.length).toBeGreaterThan(0);
    for (const r of retried) {
      expect(r.headers['x-cloudtasks-taskpreviousresponse']).toBe('503');
      expect(r.headers['x-cloudtasks-taskexecutioncount']).toBe('0');
    }
  });
});

test('duplicateFraction: that share of successful tasks is delivered a second time, identically', async () => {
  const expected = predict(3, 20, 0, 0.5);
  expect(expected.duplicates).toBeGreaterThan(0);
  await withFaultyQueue({ seed: 3, duplicateFraction: 0.5 }, async (h, queue) => {
    const ids = await createTasks(h, queue, 20);
    await h.emulator.idle({ queue });
    const twice = ids.filter((id) => h.target.requestsFor(id).length === 2);
    expect(twice).toHaveLength(expected.duplicates);
    expect(ids.every((id) => h.target.requestsFor(id).length >= 1 && h.target.requestsFor(id).length <= 2)).toBe(true);
    for (const id of twice) {
      const [original, duplicate] = h.target.requestsFor(id);
      expect(duplicate?.headers).toEqual(original?.headers);
      expect(duplicate?.body).toBe(original?.body);
    }
    expect(h.emulator.stats()).toMatchObject({ dispatches: 20, successes: 20, duplicates: expected.duplicates, requestsSent: 20 + expected.duplicates });
  });
});

test('faults change at run time; tasks that always fail are dropped after max_attempts', async () => {
  await withFaultyQueue({ failFraction: 1 }, async (h) => {
    const parent = uniqueParent();
    const queue = `${parent}/queues/limited`;
    await h.client.createQueue({
      parent,
      queue: { name: queue, retryConfig: { maxAttempts: 3, minBackoff: seconds(0.01), maxBackoff: seconds(0.01) } },
    });
    await createTasks(h, queue, 4);
    await h.emulator.idle({ queue });
    expect(h.emulator.stats()).toMatchObject({ dispatches: 12, injectedFailures: 12, dropped: 4, requestsSent: 0 });
    expect(h.target.requests).toHaveLength(0);

    h.emulator.setFaults({ failFraction: 0 });
    expect(h.emulator.faults()).toEqual({ failFraction: 0, duplicateFraction: 0, lostAnswerFraction: 0, overlappingDuplicateFraction: 0, latencyMs: 0 });
    await h.client.createTask({ parent: queue, task: { name: `${queue}/tasks/after`, httpRequest: { url: h.target.url() } } });
    await h.emulator.idle({ queue });
    expect(h.target.requestsFor('after')).toHaveLength(1);
    expect(() => h.emulator.setFaults({ failFraction: 1.5 })).toThrow(RangeError);
  });
});

test('an injected random source decides which dispatches fail', async () => {
  // fail draw, duplicate draw per dispatch: fail the first attempt, let the second through.
  const draws = [0.1, 0.9, 0.9, 0.9];
  await withFaultyQueue({ failFraction: 0.5, random: () => draws.shift() ?? 0.9 }, async (h, queue) => {
    await createTasks(h, queue, 1);
    await h.emulator.idle({ queue });
    const [only] = h.target.requestsFor('t0');
    expect(h.target.requests).toHaveLength(1);
    expect(only?.retryCount).toBe(1);
    expect(h.emulator.stats().injectedFailures).toBe(1);
  });
});

test('latencyMs delays every dispatch', async () => {
  await withFaultyQueue({ latencyMs: 250 }, async (h, queue) => {
    const created = Date.now();
    await createTasks(h, queue, 2);
    await h.emulator.idle({ queue });
    for (const request of h.target.requests) expect(request.receivedAt - created).toBeGreaterThanOrEqual(250);
  });
});
