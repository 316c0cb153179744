import pLimit from 'p-limit';
import { honoursPropertyMasks, type Datastore, type KeyList } from '../datastore';
import { DsMigrateError } from '../errors';
import { operationOf, type Executor, type OperationProgress, type OperationResult, type RunOperationRequest } from '../migrations';
import { addCounts, checkRate, Job, KeyReadAhead, loadShardStates, PAGE_KEYS, RateLimiter, summarize, zeroCounts, type Counts, type JobLayout, type RateOption, type StreamCut } from '../sharding';
import { isDataOperation, isRunFunction, type Operation } from '../operations';
import { dryRunOperation } from './dry-run';
import { runFunctionStep } from './function-step';

/**
 * Shards processed at once unless told. Against a real Datastore a shard spends most of its time waiting on
 * round trips, so throughput comes from shards in flight: at 10 ms per RPC 16 ran 8 to 20% faster than 8, at
 * 50 ms 10 to 40% (docs/operations.md). On a 2-core machine against the local emulator, whose Java process
 * is then the bottleneck, 8 was 5 to 10% faster.
 */
export const DEFAULT_CONCURRENCY = 16;

export interface LocalExecutorOptions {
  /** Shards processed at once; DEFAULT_CONCURRENCY (16) unless given, as for `dsmigrate migrate`. */
  concurrency?: number;
  /** A slice's time budget: after it the shard checkpoints and carries on in a new slice (as a Cloud Task would). */
  sliceBudgetMs?: number;
  /** Entities per second for every operation that sets no `rate` of its own (`migrate --max-rate`). */
  maxEntitiesPerSecond?: number;
  /** Makes each operation's limiter: tests pass one with a clock that only moves when it sleeps, and read its grants. */
  makeLimiter?: (rate: RateOption) => RateLimiter;
  /**
   * Keys per page when a namespace is cut into shards from its key stream (no `__scatter__`): at most 1.5
   * pages of keys are held at once. Fewer means less memory and, on the Firestore-mode emulator, more
   * queries, each costing a scan of the kind. 100,000 by default.
   */
  pageKeys?: number;
}

/**
 * Runs a job's shards in this process, a few at a time. Resumable: a job with stored state picks up its layout and each shard's checkpoint, and finished shards are skipped. Namespaces that the
 * splitter could not split (no scatter sample) are cut into shards here, page by page, while earlier
 * pages' shards already run on the keys just read.
 */
export class LocalExecutor implements Executor {
  private readonly concurrency: number;
  private readonly sliceBudgetMs: number;
  /** Pages of keys, each cut into whole rounds of the shards run at once. */
  private readonly streamCut: StreamCut;
  /** The first page of the next job's keys, read ahead (readAhead); taken by the next runOperation, which lets it go if it is not that job's. */
  private ahead?: KeyReadAhead;

  constructor(private readonly options: LocalExecutorOptions = {}) {
    this.concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
    this.sliceBudgetMs = options.sliceBudgetMs ?? 60_000;
    const pageKeys = options.pageKeys ?? PAGE_KEYS;
    if (!Number.isInteger(pageKeys) || pageKeys < 1) throw new DsMigrateError('BAD_INPUT', `LocalExecutor: pageKeys must be a whole number ≥ 1, not ${options.pageKeys}.`);
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1) throw new DsMigrateError('BAD_INPUT', `LocalExecutor: concurrency must be a whole number ≥ 1, not ${options.concurrency}.`);
    this.streamCut = { pageKeys, slots: this.concurrency };
    if (!(this.sliceBudgetMs > 0)) throw new DsMigrateError('BAD_INPUT', `LocalExecutor: sliceBudgetMs must be positive, not ${options.sliceBudgetMs}.`);
    if (options.maxEntitiesPerSecond !== undefined) checkRate(options.maxEntitiesPerSecond, 'LocalExecutor: maxEntitiesPerSecond');
  }

  /**
   * Starts what a data operation's job reads before its first batch: the first page of its keys, where the
   * job will cut shards from the key stream, and whether the backend honours property masks (a probe of
   * four round trips, asked once per store), where its batches would use them. The same operation's keys
   * are read once, however often it is named; undefined lets go of what was read.
   */
  readAhead(store: Datastore, operation: Operation | undefined): void {
    if (this.ahead?.reads(store, operation)) return;
    this.ahead?.discard();
    this.ahead = undefined;
    if (!operation || !isDataOperation(operation)) return;
    this.ahead = new KeyReadAhead(store, operation, this.streamCut);
    if (operation.touchedProperties) honoursPropertyMasks(store).catch(() => undefined);
  }

  async runOperation(request: RunOperationRequest): Promise<OperationResult> {
    const ahead = this.ahead;
    this.ahead = undefined;
    try {
      if (isRunFunction(request.operation)) return await runFunctionStep(request.operation, request);
      const operation = operationOf(request);
      if (request.dryRun) return await dryRunOperation(request.store, operation, request);
      const job = new Job(request.store, request.job, operation, this.options.maxEntitiesPerSecond);
      const layout = await job.layout(request.bounds);
      // One limiter for all the job's shards in this process, its ramp starting with the operation.
      const final = await new LocalRun(request, job, this.concurrency, this.sliceBudgetMs, this.streamCut, job.limiter(layout, this.options.makeLimiter), ahead).run(layout);
      const { complete: _, ...totals } = await job.totals(final);
      return totals;
    } finally {
      ahead?.discard();
    }
  }
}

/** One runOperation call: the shards it runs, the pages it still cuts, and the progress it reports. */
class LocalRun {
  private readonly limit: ReturnType<typeof pLimit>;
  private readonly stop = new AbortController();
  private readonly running: Promise<void>[] = [];
  private readonly scheduled = new Set<number>();
  private failure: unknown;
  private readonly counts: Counts = zeroCounts();
  private shardsTotal = 0;
  private shardsDone = 0;
  private estimatedTotal?: number;
  /** Prefetched keys handed to shards that have not finished: bounds the memory of cutting ahead. */
  private keysInFlight = 0;
  private readonly roomWaiters: (() => void)[] = [];
  private readonly onAbort = () => this.stop.abort();

  constructor(
    private readonly request: RunOperationRequest,
    private readonly job: Job,
    concurrency: number,
    private readonly sliceBudgetMs: number,
    private readonly streamCut: StreamCut,
    private readonly limiter: RateLimiter | undefined,
    private readonly ahead: KeyReadAhead | undefined,
  ) {
    this.limit = pLimit(concurrency);
  }

  /** Runs every shard; returns the layout once no namespace is left to cut, with all the job's shards. */
  async run(layout: JobLayout): Promise<JobLayout> {
    this.request.signal?.addEventListener('abort', this.onAbort, { once: true });
    try {
      return await this.runShards(layout);
    } finally {
      this.request.signal?.removeEventListener('abort', this.onAbort);
    }
  }

  private async runShards(layout: JobLayout): Promise<JobLayout> {
    const states = await loadShardStates(this.request.store, layout);
    for (const state of states) addCounts(this.counts, state.counts);
    this.adopt(
      layout,
      states.filter((s) => s.done).map((s) => s.index),
    );
    let final = layout;
    try {
      for (const { namespace } of layout.pending) final = await this.cut(namespace, final);
    } catch (error) {
      this.fail(error);
    }
    // Shards scheduled while waiting join the list, so wait until it stops growing.
    for (let seen = 0; seen < this.running.length;) {
      const waiting = this.running.slice(seen);
      seen = this.running.length;
      await Promise.all(waiting);
    }
    if (this.request.signal?.aborted) {
      const { type, kind } = this.job.work;
      throw new DsMigrateError('ABORTED', `${type} on ${kind} was interrupted; run it again to resume from its checkpoints.`, {
        job: this.request.job.id,
        migration: this.request.migration,
      });
    }
    if (this.failure !== undefined) throw this.failure;
    return final;
  }

  /** Schedules the layout's shards not scheduled yet (all of them at first; those another process cut later). */
  private adopt(layout: JobLayout, done: readonly number[] = []): void {
    this.shardsTotal = layout.shards.length;
    this.estimatedTotal = summarize(layout, []).estimatedTotal;
    for (const index of done) {
      this.scheduled.add(index);
      this.shardsDone++;
    }
    layout.shards.forEach((_, index) => this.schedule(index));
  }

  private schedule(index: number, prefetched?: KeyList): void {
    if (this.scheduled.has(index)) return;
    this.scheduled.add(index);
    this.keysInFlight += prefetched?.length ?? 0;
    this.running.push(this.limit(() => this.runShard(index, prefetched)));
  }

  private async runShard(index: number, prefetched?: KeyList): Promise<void> {
    try {
      while (!this.stop.signal.aborted) {
        const slice = await this.job.slice(index, {
          budgetMs: this.sliceBudgetMs,
          prefetched,
          migration: this.request.migration,
          signal: this.stop.signal,
          limiter: this.limiter,
          onBatch: (delta) => {
            addCounts(this.counts, delta);
            this.report();
          },
        });
        if (slice.done) {
          this.shardsDone++;
          this.report();
          return;
        }
      }
    } catch (error) {
      this.fail(error);
    } finally {
      this.release(prefetched?.length ?? 0);
    }
  }

  /**
   * Cuts a pending namespace into shards from its key stream and runs each page's shards on the keys
   * just read. Reads the next page only once at most half a page of keys is still waiting to be done.
   * Returns the stored layout as it stood once the namespace was cut.
   */
  private async cut(namespace: string, given: JobLayout): Promise<JobLayout> {
    // The first pass starts from the layout just read: a page another process cut meanwhile is refused by appendPage, and the next pass reads again.
    for (let layout = given; ; layout = await this.job.stored()) {
      this.adopt(layout);
      const entry = layout.pending.find((p) => p.namespace === namespace);
      if (!entry || this.stop.signal.aborted) return layout;
      for await (const shards of this.job.cut(entry, this.streamCut, this.ahead)) {
        this.shardsTotal = shards[shards.length - 1].index + 1;
        for (const shard of shards) this.schedule(shard.index, shard.keys);
        if (this.stop.signal.aborted) return layout;
        await this.room();
      }
    }
  }

  /** Room to read the next page: at most half a page of keys still waiting (so at most 1.5 pages alive). */
  private room(): Promise<void> {
    return this.hasRoom() ? Promise.resolve() : new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  private hasRoom(): boolean {
    return this.keysInFlight <= this.streamCut.pageKeys / 2 || this.stop.signal.aborted;
  }

  private release(keys: number): void {
    this.keysInFlight -= keys;
    if (this.hasRoom()) for (const wake of this.roomWaiters.splice(0)) wake();
  }

  private fail(error: unknown): void {
    this.failure ??= error;
    this.stop.abort();
    for (const wake of this.roomWaiters.splice(0)) wake();
  }

  private report(): void {
    const progress: OperationProgress = {
      shardsTotal: this.shardsTotal,
      shardsDone: this.shardsDone,
      ...this.counts,
      estimatedTotal: this.estimatedTotal,
      rateLimit: this.limiter?.currentRate,
      keysHeld: this.keysInFlight,
    };
    this.request.onProgress?.(progress);
  }
}
