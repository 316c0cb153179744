import { retryDelayMs, type RetryConfig } from '../../emulator/cloud-tasks';

// The worked example from RetryConfig.max_doublings in the Cloud Tasks API reference.
test('retry intervals double max_doublings times, then grow linearly, capped at max_backoff', () => {
  const config: RetryConfig = { maxAttempts: 100, maxRetryDurationMs: 0, minBackoffMs: 10_000, maxBackoffMs: 300_000, maxDoublings: 3 };
  const delays = [1, 2, 3, 4, 5, 6, 7, 8].map((attempts) => retryDelayMs(config, attempts) / 1000);
  expect(delays).toEqual([10, 20, 40, 80, 160, 240, 300, 300]);
});
