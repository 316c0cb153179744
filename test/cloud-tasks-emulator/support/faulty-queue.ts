import type { protos } from '@google-cloud/tasks';
import type { CloudTasksEmulatorOptions } from '../../../emulator/cloud-tasks';
import { seconds, startHarness, uniqueParent, type Harness } from './harness';

/**
 * Runs `body` with an emulator of its own (so that its random sequence starts from the seed) and a
 * queue that retries without limit after 10 ms; `queue` may override the queue's settings.
 */
export async function withFaultyQueue(
  options: CloudTasksEmulatorOptions,
  body: (h: Harness, queue: string) => Promise<void>,
  queue: Pick<protos.google.cloud.tasks.v2.IQueue, 'retryConfig' | 'rateLimits'> = {},
): Promise<void> {
  const h = await startHarness(options);
  try {
    const parent = uniqueParent();
    const name = `${parent}/queues/faulty`;
    await h.client.createQueue({
      parent,
      queue: {
        name,
        retryConfig: { maxAttempts: -1, minBackoff: seconds(0.01), maxBackoff: seconds(0.01), ...queue.retryConfig },
        ...(queue.rateLimits ? { rateLimits: queue.rateLimits } : {}),
      },
    });
    await body(h, name);
  } finally {
    await h.close();
  }
}

/** Creates tasks t0, t1, ... for the harness's target, one at a time; returns their ids. */
export async function createTasks(h: Harness, queue: string, count: number): Promise<string[]> {
  const ids = Array.from({ length: count }, (_, i) => `t${i}`);
  for (const id of ids) await h.client.createTask({ parent: queue, task: { name: `${queue}/tasks/${id}`, httpRequest: { url: h.target.url() } } });
  return ids;
}
