import type { JobRef } from '../control';
import type { Datastore } from '../datastore';
import { formatWarnings, type JobCounts } from './counts';
import type { JobLayout, PendingNamespace } from './job-layout';
import { loadManifest, saveManifests, type CutShard } from './key-manifest';
import { appendPage, ensureLayout, loadLayout, requireLayout } from './layouts';
import { runShardSlice, type SliceOptions, type SliceResult } from './processor';
import { loadShardStates, summarize } from './progress';
import type { KeyRange } from './ranges';
import { layoutRate, RateLimiter, sliceShare, type RateOption } from './rate-limit';
import type { KeyReadAhead } from './read-ahead';
import { cutFromStream, PAGE_KEYS, type StreamCut } from './splitter';
import type { ShardWork } from './work';

/** What a job needs of its operation besides the shard work; src/operations' Operation has it all. */
export interface JobWork extends ShardWork {
  /** Stored with the layout: a job resumed with another operation is refused. */
  fingerprint(): string;
  namespaces(store: Datastore): Promise<readonly string[]>;
  readonly scope: { readonly shardCount?: number; readonly rate?: RateOption };
  /** Whether a rate without `rampUp` ramps up; asked once, when the job is laid out. */
  rampsByDefault(store: Datastore): Promise<boolean>;
}

export type JobSliceOptions = Omit<SliceOptions, 'store' | 'work' | 'job' | 'index'>;

export interface JobTotals extends JobCounts {
  warnings: string[];
  /** Every shard layoutned (no key stream left to cut) and finished. */
  complete: boolean;
}

/** The operation's rate, else the run-wide one; whether it ramps up when `rampUp` is not given, the job's layout says (layoutRate). */
export function rateFor(work: Pick<JobWork, 'scope'>, runWide?: number): RateOption | undefined {
  return work.scope.rate ?? (runWide === undefined ? undefined : { maxEntitiesPerSecond: runWide });
}

/** Counts summed over the job's shards; undefined before it has a layout. Needs no operation, as `status` has none. */
export async function jobTotals(store: Datastore, ref: JobRef): Promise<JobTotals | undefined> {
  const layout = await loadLayout(store, ref);
  return layout && totalsOf(store, layout);
}

async function totalsOf(store: Datastore, layout: JobLayout): Promise<JobTotals> {
  const states = await loadShardStates(store, layout);
  const { warnings, ...progress } = summarize(layout, states);
  return { ...progress, warnings: formatWarnings(warnings), complete: layout.pending.length === 0 && states.every((s) => s.done) };
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

  /** The stored layout, made now if there is none (the first process to store one wins); `bounds` as for LayoutRequest. */
  layout(bounds?: readonly KeyRange[]): Promise<JobLayout> {
    const { store, work } = this;
    const rate = this.rate();
    return ensureLayout({
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

  /** The stored layout, which must exist: once laid out, a job is never laid out again (its state was cleared otherwise). */
  stored(): Promise<JobLayout> {
    return requireLayout(this.store, this.ref);
  }

  /**
   * Cuts a pending namespace into shards from its key stream, page by page from its cursor, adding each
   * page's shards to the stored layout before yielding them; a page is read only when the previous one was
   * taken. Stops where another process cut a page first: the stored layout then shows how far it got.
   * The first page may have been read ahead (src/sharding/read-ahead.ts).
   */
  async *cut(pending: PendingNamespace, cut: StreamCut = { pageKeys: PAGE_KEYS }, readAhead?: KeyReadAhead): AsyncGenerator<CutShard[]> {
    const { namespace } = pending;
    let cursor = pending.cursor;
    const target = { kind: this.work.kind, namespace, filters: this.work.filters };
    const pages = (cursor === undefined && (await readAhead?.take(this.store, this.work, target, cut))) || cutFromStream(this.store, target, cursor, cut);
    for await (const page of pages) {
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
  async extend(): Promise<JobLayout> {
    const layout = await this.stored();
    if (layout.pending.length === 0) return layout;
    for await (const shards of this.cut(layout.pending[0])) {
      await saveManifests(this.store, layout, shards);
      break;
    }
    return this.stored();
  }

  /**
   * The job's rate limiter, none without a rate. A process that runs all the shards makes one and hands
   * it to every slice; `make` makes it (tests pass a clock).
   */
  limiter(layout: JobLayout, make = (rate: RateOption) => new RateLimiter(rate)): RateLimiter | undefined {
    const rate = this.rate();
    return rate && make(layoutRate(rate, layout));
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
      const layout = await this.stored();
      prefetched ??= await loadManifest(this.store, layout, index);
      limiter ??= this.limiter(layout, (rate) => new RateLimiter({ ...sliceShare(rate, layout.shards.length), rampFrom: layout.createdAt.getTime() }));
    }
    return runShardSlice({ ...options, store: this.store, work: this.work, job: this.ref, index, prefetched, limiter });
  }

  /** Counts summed over the shards of `layout` (one with nothing left to cut, so no shard is missing), else of the stored layout. */
  async totals(layout?: JobLayout): Promise<JobTotals> {
    return totalsOf(this.store, layout && layout.pending.length === 0 ? layout : await this.stored());
  }
}
