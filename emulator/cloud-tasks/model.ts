import type { HttpMethodName, WireAppEngineRouting } from './wire';

/** The emulator's own view of queues and tasks: plain data, times in epoch milliseconds. */

export type QueueStateName = 'RUNNING' | 'PAUSED' | 'DISABLED';

export interface RateLimits {
  maxDispatchesPerSecond: number;
  /** Output only in the API; derived from maxDispatchesPerSecond. */
  maxBurstSize: number;
  maxConcurrentDispatches: number;
}

export interface RetryConfig {
  /** -1 means unlimited. */
  maxAttempts: number;
  /** 0 means no age limit. */
  maxRetryDurationMs: number;
  minBackoffMs: number;
  maxBackoffMs: number;
  maxDoublings: number;
}

export interface QueueConfig {
  rateLimits: RateLimits;
  retryConfig: RetryConfig;
  /** Kept and echoed back; App Engine routing is not emulated. */
  appEngineRoutingOverride?: WireAppEngineRouting;
  stackdriverLoggingConfig?: { samplingRatio: number };
}

export type TaskAuth = { kind: 'oidc'; serviceAccountEmail: string; audience: string } | { kind: 'oauth'; serviceAccountEmail: string; scope: string };

export interface HttpTarget {
  url: string;
  method: HttpMethodName;
  headers: Record<string, string>;
  body: Buffer;
  auth?: TaskAuth;
}

export interface RpcStatus {
  code: number;
  message: string;
}

export interface Attempt {
  scheduleTime: number;
  dispatchTime: number;
  responseTime?: number;
  responseStatus?: RpcStatus;
}

/** What the next attempt tells its handler about the previous one. */
export interface PreviousFailure {
  /** Absent when no HTTP response came back (timeout, connection error). */
  httpStatus?: number;
  reason: string;
}

export interface TaskRecord {
  readonly name: string;
  readonly queueName: string;
  /** Creation order: ties in the schedule and list order are broken by it. */
  readonly seq: number;
  readonly target: HttpTarget;
  readonly createTime: number;
  readonly dispatchDeadlineMs: number;
  scheduleTime: number;
  dispatchCount: number;
  responseCount: number;
  firstAttempt?: Attempt;
  lastAttempt?: Attempt;
  previousFailure?: PreviousFailure;
  /** An attempt is under way; the scheduler will not start another. */
  inFlight: boolean;
  /** False once the task succeeded, was dropped, deleted or purged: late outcomes are then ignored. */
  live: boolean;
  /** Bumped on every (re)schedule so that older entries in the due-heap can be recognised as stale. */
  scheduleToken: number;
}
