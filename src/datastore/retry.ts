import { setTimeout as sleep } from 'node:timers/promises';

/** gRPC status codes (numeric, as the clients report them). */
export const GrpcCode = {
  CANCELLED: 1,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
  UNIMPLEMENTED: 12,
} as const;

/** Transient everywhere. */
export const TRANSIENT_CODES: readonly number[] = [GrpcCode.UNAVAILABLE, GrpcCode.DEADLINE_EXCEEDED, GrpcCode.RESOURCE_EXHAUSTED];
/**
 * What a call is retried on by itself, outside a transaction, and a whole transaction on: ABORTED too, which
 * is contention and means that nothing was applied (Datastore's guidance is to retry a non-transactional
 * commit, and the whole transaction, on it). A call inside a transaction is never retried alone: the
 * transaction is.
 */
export const TRANSACTION_RETRY_CODES: readonly number[] = [...TRANSIENT_CODES, GrpcCode.ABORTED];

/**
 * The codes with which a commit may have been applied although it answered an error: the answer was lost
 * (the deadline passed, the connection broke) after the server had committed.
 */
export const UNKNOWN_OUTCOME_CODES: readonly number[] = [GrpcCode.DEADLINE_EXCEEDED, GrpcCode.UNAVAILABLE];

export interface RetryOptions {
  /** Attempts in all, the first included. */
  attempts?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  codes?: readonly number[];
  /** Stop retrying once this much time has passed since the first attempt. */
  maxElapsedMs?: number;
  /** Called before each wait; lets callers shrink a batch after contention. */
  onRetry?: (error: unknown, attempt: number) => void;
}

export function grpcCode(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

export function isRetryable(error: unknown, codes: readonly number[] = TRANSIENT_CODES): boolean {
  const code = grpcCode(error);
  return code !== undefined && codes.includes(code);
}

/** Exponential backoff with full jitter, so that retrying workers do not stampede together. */
export function backoffDelay(attempt: number, baseDelayMs = 100, maxDelayMs = 5000): number {
  const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

export async function withRetry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const attempts = options.attempts ?? 6;
  const deadline = Date.now() + (options.maxElapsedMs ?? Infinity);
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (error) {
      if (attempt >= attempts || Date.now() >= deadline || !isRetryable(error, options.codes)) throw error;
      options.onRetry?.(error, attempt);
      await sleep(backoffDelay(attempt, options.baseDelayMs, options.maxDelayMs));
    }
  }
}
