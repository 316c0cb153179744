import { DsMigrateError } from '../errors';
import { MAX_BATCH } from './work';

/** An operation's write rate: entities per second over all its shards, and whether to ramp up to it. */
export interface RateOption {
  maxEntitiesPerSecond: number;
  /** Follow Datastore's 500/50/5 rule up to the maximum: start at 500/s, add 50% every 5 minutes. */
  rampUp?: boolean;
}

/** The window over which the budget is never exceeded. */
export const RATE_WINDOW_MS = 10_000;
const GRANT_MS = RATE_WINDOW_MS / 4;
/** Datastore's guidance for a new kind or key range: start at 500 operations/s, add 50% every 5 minutes. */
export const RAMP_START_PER_SECOND = 500;
export const RAMP_FACTOR = 1.5;
export const RAMP_STEP_MS = 5 * 60_000;

export interface RateLimiterOptions {
  maxEntitiesPerSecond: number;
  rampUp?: boolean;
  /** When the ramp started (epoch ms): the operation's start, which may be before this limiter's. */
  rampFrom?: number;
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

export interface Grant {
  at: number;
  entities: number;
}

/** Why `value` is no rate (entities per second, more than 0), or undefined if it is one; `name` is the option or flag. */
export function rateProblem(value: unknown, name: string): string | undefined {
  if (typeof value === 'number' && Number.isFinite(value) && value > 0) return undefined;
  return `${name} must be a positive number of entities per second, not ${typeof value === 'number' && Number.isNaN(value) ? 'a number' : JSON.stringify(value)}.`;
}

/** The rate, checked as every entry point checks it. */
export function checkRate(value: unknown, name: string): number {
  const problem = rateProblem(value, name);
  if (problem) throw new DsMigrateError('BAD_INPUT', problem, { flag: name });
  return value as number;
}

/** The rate a job's limiters run at: `rampUp` as given, else as the job's layout decided (see Operation.rampsByDefault). */
export function layoutRate(rate: RateOption, layout: { rampsByDefault?: boolean }): RateOption {
  return { ...rate, rampUp: rate.rampUp ?? layout.rampsByDefault ?? false };
}

/**
 * One slice's share of a run-wide rate under Cloud Tasks: every shard of the job may run a slice at
 * the same moment, each with its own limiter, so each gets the rate divided by the job's shards.
 */
export function sliceShare(rate: RateOption, shards: number): RateOption {
  return { ...rate, maxEntitiesPerSecond: rate.maxEntitiesPerSecond / Math.max(1, shards) };
}

const defaultSleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

/**
 * Grants entities to write, shared by all the shards of one job in a process. Two rules, both kept:
 *
 * - Spacing, paid before: a grant of n moves the next possible grant n/rate later, and the first one
 *   waits too (a limiter starts with the time of a largest grant already reserved). So grants are
 *   spread evenly, and a new limiter (the next Cloud Tasks slice of a shard) cannot burst right after
 *   the previous one stopped.
 * - A window check: a grant happens only when it and every grant of the last 10 s (both ends
 *   included) add up to at most rate × 10 s. Spacing alone lets one grant too many into a window
 *   whose start cuts a reserved interval; the check is what makes "never over budget" hold.
 *
 * Grants are served one at a time in order of request, so shards take turns.
 */
export class RateLimiter {
  private readonly max: number;
  private readonly start: number;
  /** When the ramp started (epoch ms of the limiter's clock). */
  readonly rampFrom: number;
  private readonly rampUp: boolean;
  private readonly now: () => number;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** When the reserved budget runs out: the next grant of n is at least n/rate after it. */
  private reservedUntil: number;
  private readonly recent: Grant[] = [];
  private queue: Promise<unknown> = Promise.resolve();
  /** Every grant made, for tests and benchmarks to check the budget against. */
  readonly grants: Grant[] = [];

  constructor(options: RateLimiterOptions) {
    this.max = checkRate(options.maxEntitiesPerSecond, 'rate.maxEntitiesPerSecond');
    this.rampUp = options.rampUp ?? false;
    this.now = options.now ?? Date.now;
    this.sleep = options.sleep ?? defaultSleep;
    this.start = this.now();
    this.rampFrom = options.rampFrom ?? this.start;
    this.reservedUntil = this.start + (this.largestGrant / this.rateAt(this.start)) * 1000;
  }

  /** Entities per second allowed now. */
  get currentRate(): number {
    return this.rateAt(this.now());
  }

  /**
   * The most a batch may ask for: what the starting rate allows in a quarter of the window (at least
   * one entity, at most a full batch). Small grants keep the wait a new limiter starts with short.
   */
  get largestGrant(): number {
    return Math.max(1, Math.min(MAX_BATCH, Math.floor((this.rateAt(this.start) * GRANT_MS) / 1000)));
  }

  /** 500/50/5 from `rampFrom` when ramping, capped at the maximum; the maximum otherwise. */
  rateAt(time: number): number {
    if (!this.rampUp) return this.max;
    const steps = Math.max(0, Math.floor((time - this.rampFrom) / RAMP_STEP_MS));
    return Math.min(this.max, Math.min(RAMP_START_PER_SECOND, this.max) * RAMP_FACTOR ** steps);
  }

  /**
   * Waits until `entities` may be written. Resolves false, granting nothing, if the signal aborts
   * first. A request larger than the window's whole budget (a rate below one entity per 10 s) is granted
   * alone in its window: an entity is never split.
   */
  acquire(entities: number, signal?: AbortSignal): Promise<boolean> {
    const turn = this.queue.then(() => this.grant(entities, signal));
    this.queue = turn.catch(() => undefined);
    return turn;
  }

  private async grant(entities: number, signal?: AbortSignal): Promise<boolean> {
    for (;;) {
      if (signal?.aborted) return false;
      const now = this.now();
      const rate = this.rateAt(now);
      const spacedAt = this.reservedUntil + (entities / rate) * 1000;
      const windowAt = this.windowAllows(entities, rate);
      const at = Math.max(spacedAt, windowAt);
      if (at <= now) {
        this.reservedUntil = now;
        const grant = { at: now, entities };
        this.recent.push(grant);
        this.grants.push(grant);
        return true;
      }
      // Sleep and look again: the rate may have ramped up meanwhile, and the clock may be a test's.
      await this.sleep(at - now, signal);
    }
  }

  /** The earliest time at which the last 10 s of grants leave room for `entities` (or are all gone). */
  private windowAllows(entities: number, rate: number): number {
    const now = this.now();
    while (this.recent.length > 0 && this.recent[0].at < now - RATE_WINDOW_MS) this.recent.shift();
    const budget = (rate * RATE_WINDOW_MS) / 1000;
    let used = this.recent.reduce((sum, g) => sum + g.entities, 0);
    let at = now;
    // Oldest grants leave the window first: just after one has left, its entities are free again.
    for (const g of this.recent) {
      if (used + entities <= budget || used === 0) break;
      used -= g.entities;
      at = g.at + RATE_WINDOW_MS + 1;
    }
    return at;
  }
}
