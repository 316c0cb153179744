import type { RetryConfig } from './model';

/**
 * Delay before the retry that follows attempt number `attempts` (1 = after the first attempt).
 * As documented for RetryConfig: start at minBackoff, double maxDoublings times, then grow
 * linearly by the last doubled interval, never beyond maxBackoff. With min 10s, max 300s and 3
 * doublings: 10, 20, 40, 80, 160, 240, 300, 300, ...
 */
export function retryDelayMs(config: RetryConfig, attempts: number): number {
  const retry = Math.max(1, attempts);
  const doublings = Math.min(retry - 1, config.maxDoublings);
  const doubled = config.minBackoffMs * 2 ** doublings;
  const linearSteps = retry - 1 - doublings;
  return Math.min(config.maxBackoffMs, doubled * (1 + linearSteps));
}

/**
 * Whether a task that just failed its `attempts`-th attempt is dropped. When both limits are set,
 * Cloud Tasks retries until both are reached; an unset limit (-1 attempts, 0 duration) never is.
 */
export function retriesExhausted(config: RetryConfig, attempts: number, firstAttemptAt: number, now: number): boolean {
  const byAttempts = config.maxAttempts === -1 ? undefined : attempts >= config.maxAttempts;
  const byAge = config.maxRetryDurationMs > 0 ? now - firstAttemptAt >= config.maxRetryDurationMs : undefined;
  if (byAttempts === undefined && byAge === undefined) return false;
  return (byAttempts ?? true) && (byAge ?? true);
}
