import type { JobRef } from '../control';
import type { Datastore } from '../datastore';
import { formatWarnings } from './counts';
import type { JobPlan, PendingNamespace } from './job-plan';
import { loadManifest, saveManifests, type CutShard } from './key-manifest';
import { appendPage, ensurePlan, loadPlan, requirePlan } from './planner';
import { runShardSlice, type SliceOptions, type SliceResult } from './processor';
import { loadShardStates, summarize, type JobProgress } from './progress';
import type { KeyRange } from './ranges';
import { planRate, RateLimiter, sliceShare, type RateOption } from './rate-limit';
import { cutFromStream } from './splitter';
import type { ShardWork } from './work';

/** What a job needs of its operation besides the shard work; src/operations' Operation has it all. */
export interface JobWork extends ShardWork {
  /** Stored with the plan: a job resumed with another operation is refused. */
  fingerprint(): string;
  namespaces(store: Datastore): Promise<readonly string[]>;
  readonly scope: { readonly shardCount?: number; readonly rate?: RateOption };
  /** Whether a rate without `rampUp` ramps up; asked once, when the job is planned. */
  rampsByDefault(store: Datastore): Promise<boolean>;
}

export type JobSliceOptions = Omit<SliceOptions, 'store' | 'work' | 'job' | 'index'>;

export interface JobTotals extends JobProgress {
  warnings: string[];
  /** Every shard planned (no key stream left to cut) and finished. */
  complete: boolean;
}

/** The operation's rate, else the run-wide one; whether it ramps up when `rampUp` is not given, the job's plan says (planRate). */
export function rateFor(work: Pick<JobWork, 'scope'>, runWide?: number): RateOption | undefined {
  return work.scope.rate ?? (runWide === undefined ? undefined : { maxEntitiesPerSecond: runWide });
}

/** Counts summed over the job's shards; undefined before it has a plan. Needs no operation, as `status` has none. */
export async function jobTotals(store: Datastore, ref: JobRef): Promise<JobTotals | undefined> {
  const plan = await loadPlan(store, ref);
  return plan && totalsOf(store, plan);
}

async function totalsOf(store: Datastore, plan: JobPlan): Promise<JobTotals> {
  const states = await loadShardStates(store, plan);
  const { warnings, ...progress } = summarize(plan, states);
  return { ...progress, warnings: formatWarnings(warnings), complete: plan.pending.length === 0 && states.every((s) => s.done) };
}

/**
 * One operation's job over the sharding layer, for whichever driver schedules its shards: the local
 * executor runs them all in one process, Cloud Tasks one slice per task. `runWideRate` is the run's
 * maximum (`--max-rate`), for an operation that sets no rate of its own.
 */
export class Job {
  constructor(
    readonly store: Datastore,
    readonly ref: JobRef,
    readonly work: JobWork,
    private readonly runWideRate?: number,
  ) {}

  rate(): RateOption | undefined {
    return rateFor(this.work, this.runWideRate);
  }

  /** The stored plan, made now if there is none (the first process to store one wins); `bounds` as for PlanRequest. */
  plan(bounds?: readonly KeyRange[]): Promise<JobPlan> {
    const { store, work } = this;
    const rate = this.rate();
    return ensurePlan({
      store,
      job: this.ref,
      bounds,
      type: work.type,
      kind: work.kind,
      operation: work.fingerprint(),
      namespaces: () => work.namespaces(store),
      filters: work.filters,
      shardCount: work.scope.shardCount,
      // Only a rate that leaves `rampUp` open needs the answer, which costs a query per namespace.
      rampsByDefault: rate && rate.rampUp === undefined ? () => work.rampsByDefault(store) : undefined,
    });
  }

  /** The stored plan, which must exist: once planned, a job never plans again (its state was cleared otherwise). */
  stored(): Promise<JobPlan> {
    return requirePlan(this.store, this.ref);
  }

  /**
   * Cuts a pending namespace into shards from its key stream, page by page from its cursor, adding each
   * page's shards to the stored plan before yielding them; a page is read only when the previous one was
   * taken. Stops where another process cut a page first: the stored plan then shows how far it got.
   */
  async *cut(pending: PendingNamespace, pageKeys?: number): AsyncGenerator<CutShard[]> {
    const { namespace } = pending;
    let cursor = pending.cursor;
    for await (const page of cutFromStream(this.store, { kind: this.work.kind, namespace, filters: this.work.filters }, cursor, pageKeys)) {
      const indexes = await appendPage(this.store, this.ref, namespace, cursor, page);
      if (!indexes) return;
      yield page.shards.map((shard, i) => ({ index: indexes[i], ...shard }));
      cursor = page.next;
    }
  }

  /**
   * Cuts the next page of the first pending namespace, for shards that run in other processes: their keys
   * go to manifests, so that each slice looks them up rather than scanning its range again.
   */
  async extend(): Promise<JobPlan> {
    const plan = await this.stored();
    if (plan.pending.length === 0) return plan;
    for await (const shards of this.cut(plan.pending[0])) {
      await saveManifests(this.store, plan, shards);
      break;
    }
    return this.stored();
  }

  /**
   * The job's rate limiter, none without a rate. A process that runs all the shards makes one and hands
   * it to every slice; `make` makes it (tests pass a clock).
   */
  limiter(plan: JobPlan, make = (rate: RateOption) => new RateLimiter(rate)): RateLimiter | undefined {
    const rate = this.rate();
    return rate && make(planRate(rate, plan));
  }

  /**
   * One time-boxed slice of a shard, from its checkpoint. Given no keys, it reads the shard's manifest
   * (or streams its range). Given no limiter, it is one of as many slices as the job has shards, all of
   * which may run at once, each with its own limiter (Cloud Tasks): it takes its share of the rate, and
   * ramps from the job's start.
   */
  async slice(index: number, options: JobSliceOptions = {}): Promise<SliceResult> {
    let { prefetched, limiter } = options;
    if (!prefetched || (!limiter && this.rate())) {
      const plan = await this.stored();
      prefetched ??= await loadManifest(this.store, plan, index);
      limiter ??= this.limiter(plan, (rate) => new RateLimiter({ ...sliceShare(rate, plan.shards.length), rampFrom: plan.createdAt.getTime() }));
    }
    return runShardSlice({ ...options, store: this.store, work: this.work, job: this.ref, index, prefetched, limiter });
  }

  async totals(): Promise<JobTotals> {
    return totalsOf(this.store, await this.stored());
  }
}
