import { invalidArgument } from './errors';
import type { QueueConfig, RateLimits, RetryConfig } from './model';
import { durationToMs } from './time';
import type { WireQueue } from './wire';

/**
 * Queue settings: Cloud Tasks' defaults, its limits, and UpdateQueue's field masks. As in the real
 * API, a zero or unset field means "pick the default": proto3 cannot tell the two apart.
 */

export const DEFAULT_RATE_LIMITS = { maxDispatchesPerSecond: 500, maxConcurrentDispatches: 1000 } as const;
export const DEFAULT_RETRY_CONFIG: RetryConfig = {
  maxAttempts: 100,
  maxRetryDurationMs: 0,
  minBackoffMs: 100,
  maxBackoffMs: 3_600_000,
  maxDoublings: 16,
};
const MAX_DISPATCHES_PER_SECOND = 500;
const MAX_CONCURRENT_DISPATCHES = 5000;

/** Cloud Tasks derives the (output-only) burst size from the rate; 100 is what it shows for the default 500/s. */
export const burstSizeFor = (ratePerSecond: number): number => Math.max(1, Math.min(100, Math.ceil(ratePerSecond)));

function orDefault(value: number | undefined, fallback: number): number {
  return value === undefined || value === 0 ? fallback : value;
}

function rateLimitsFromWire(queue: WireQueue): RateLimits {
  const given = queue.rateLimits ?? {};
  const rate = orDefault(given.maxDispatchesPerSecond, DEFAULT_RATE_LIMITS.maxDispatchesPerSecond);
  if (!(rate > 0 && rate <= MAX_DISPATCHES_PER_SECOND)) {
    throw invalidArgument(`rate_limits.max_dispatches_per_second must be in (0, ${MAX_DISPATCHES_PER_SECOND}], got ${rate}`);
  }
  const concurrent = orDefault(given.maxConcurrentDispatches, DEFAULT_RATE_LIMITS.maxConcurrentDispatches);
  if (!(Number.isInteger(concurrent) && concurrent >= 1 && concurrent <= MAX_CONCURRENT_DISPATCHES)) {
    throw invalidArgument(`rate_limits.max_concurrent_dispatches must be between 1 and ${MAX_CONCURRENT_DISPATCHES}, got ${concurrent}`);
  }
  return { maxDispatchesPerSecond: rate, maxBurstSize: burstSizeFor(rate), maxConcurrentDispatches: concurrent };
}

function retryConfigFromWire(queue: WireQueue): RetryConfig {
  const given = queue.retryConfig ?? {};
  const durationOrDefault = (field: 'maxRetryDuration' | 'minBackoff' | 'maxBackoff', fallback: number): number => {
    const ms = orDefault(durationToMs(given[field], `retry_config.${field}`), fallback);
    if (ms < 0) throw invalidArgument(`retry_config.${field} must not be negative`);
    return ms;
  };
  const config: RetryConfig = {
    maxAttempts: orDefault(given.maxAttempts, DEFAULT_RETRY_CONFIG.maxAttempts),
    maxRetryDurationMs: durationOrDefault('maxRetryDuration', DEFAULT_RETRY_CONFIG.maxRetryDurationMs),
    minBackoffMs: durationOrDefault('minBackoff', DEFAULT_RETRY_CONFIG.minBackoffMs),
    maxBackoffMs: durationOrDefault('maxBackoff', DEFAULT_RETRY_CONFIG.maxBackoffMs),
    maxDoublings: orDefault(given.maxDoublings, DEFAULT_RETRY_CONFIG.maxDoublings),
  };
  if (config.maxAttempts < -1) throw invalidArgument(`retry_config.max_attempts must be >= -1, got ${config.maxAttempts}`);
  if (config.maxDoublings < 0) throw invalidArgument(`retry_config.max_doublings must be >= 0, got ${config.maxDoublings}`);
  return config;
}

/** Every setting taken from `queue`, defaults where unset, each one validated on its own. */
function parseConfig(queue: WireQueue): QueueConfig {
  const config: QueueConfig = { rateLimits: rateLimitsFromWire(queue), retryConfig: retryConfigFromWire(queue) };
  if (queue.appEngineRoutingOverride) config.appEngineRoutingOverride = { ...queue.appEngineRoutingOverride };
  if (queue.stackdriverLoggingConfig) {
    const ratio = queue.stackdriverLoggingConfig.samplingRatio ?? 0;
    if (!(ratio >= 0 && ratio <= 1)) throw invalidArgument(`stackdriver_logging_config.sampling_ratio must be in [0, 1], got ${ratio}`);
    config.stackdriverLoggingConfig = { samplingRatio: ratio };
  }
  return config;
}

/** The config of a new queue: `queue`'s settings, defaults where unset, validated. */
export const configFromWire = (queue: WireQueue): QueueConfig => checkConsistent(parseConfig(queue));

function checkConsistent(config: QueueConfig): QueueConfig {
  const { minBackoffMs, maxBackoffMs } = config.retryConfig;
  if (minBackoffMs > maxBackoffMs) {
    throw invalidArgument(`retry_config.min_backoff (${minBackoffMs / 1000}s) must not exceed max_backoff (${maxBackoffMs / 1000}s)`);
  }
  return config;
}

/** Copies one masked field from the incoming config into the next one. */
type Copy = (next: QueueConfig, incoming: QueueConfig) => void;
const rate =
  <K extends keyof RateLimits>(key: K): Copy =>
  (next, incoming) => {
    next.rateLimits[key] = incoming.rateLimits[key];
  };
const retry =
  <K extends keyof RetryConfig>(key: K): Copy =>
  (next, incoming) => {
    next.retryConfig[key] = incoming.retryConfig[key];
  };
const optional =
  (key: 'stackdriverLoggingConfig' | 'appEngineRoutingOverride'): Copy =>
  (next, incoming) => {
    if (incoming[key] === undefined) delete next[key];
    else Object.assign(next, { [key]: incoming[key] });
  };

const FIELDS: Record<string, Copy> = {
  rateLimits: (next, incoming) => Object.assign(next.rateLimits, incoming.rateLimits),
  'rateLimits.maxDispatchesPerSecond': rate('maxDispatchesPerSecond'),
  'rateLimits.maxConcurrentDispatches': rate('maxConcurrentDispatches'),
  retryConfig: (next, incoming) => Object.assign(next.retryConfig, incoming.retryConfig),
  'retryConfig.maxAttempts': retry('maxAttempts'),
  'retryConfig.maxRetryDuration': retry('maxRetryDurationMs'),
  'retryConfig.minBackoff': retry('minBackoffMs'),
  'retryConfig.maxBackoff': retry('maxBackoffMs'),
  'retryConfig.maxDoublings': retry('maxDoublings'),
  stackdriverLoggingConfig: optional('stackdriverLoggingConfig'),
  'stackdriverLoggingConfig.samplingRatio': optional('stackdriverLoggingConfig'),
  appEngineRoutingOverride: optional('appEngineRoutingOverride'),
};
const ALL_FIELDS = ['rateLimits', 'retryConfig', 'stackdriverLoggingConfig', 'appEngineRoutingOverride'];
const OUTPUT_ONLY = new Set(['name', 'state', 'purgeTime', 'rateLimits.maxBurstSize']);

/** Field masks may be written in proto (snake_case) or JSON (camelCase) spelling. */
const camel = (path: string): string => path.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

/**
 * The config after UpdateQueue: the masked fields are taken from `queue` (defaults where unset),
 * the others kept. An empty mask replaces every setting, as the API documents.
 */
export function applyUpdate(current: QueueConfig, queue: WireQueue, paths: readonly string[]): QueueConfig {
  const incoming = parseConfig(queue);
  const next: QueueConfig = { ...current, rateLimits: { ...current.rateLimits }, retryConfig: { ...current.retryConfig } };
  for (const path of paths.length > 0 ? paths.map(camel) : ALL_FIELDS) {
    if (OUTPUT_ONLY.has(path)) throw invalidArgument(`Field "${path}" cannot be changed by UpdateQueue`);
    // App Engine routing is only stored, so any of its sub-fields replaces the whole message.
    const copy = FIELDS[path.startsWith('appEngineRoutingOverride.') ? 'appEngineRoutingOverride' : path];
    if (!copy) throw invalidArgument(`Unknown field in update_mask: "${path}"`);
    copy(next, incoming);
  }
  next.rateLimits.maxBurstSize = burstSizeFor(next.rateLimits.maxDispatchesPerSecond);
  return checkConsistent(next);
}
