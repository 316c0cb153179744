import { jobKey, shardKey, type JobRef } from '../control';
import { honoursPropertyMasks, Key, MAX_COMMIT_MUTATIONS, onlyProperties, versionAsRead, type Datastore, type Entity, type KeyList, type Transaction } from '../datastore';
import { keepMarkers, type MarkerChange } from '../model';
import { DsMigrateError, errorMessage, isDsMigrateError } from '../errors';
import { applyBatch, type AppliedBatch } from './apply';
import { batchImages, operationOfJob } from './before-images';
import { batchLength, type CommitBudget, type CommitCost } from './batcher';
import { decodeShard, encodeShard, freshShard, type ShardState } from './checkpoint';
import { addCounts, mergeWarnings, type Counts } from './counts';
import { pushedDown } from './filters';
import type { RateLimiter } from './rate-limit';
import { KeyQueue } from './key-queue';
import { decodeLayout, isLive, type JobLayout } from './job-layout';
import { loadLayout } from './layouts';
import { afterCommittedBatch } from './test-pause';
import { uniqueFieldsFor, type ShardWork } from './work';

export interface SliceOptions {
  store: Datastore;
  work: ShardWork;
  job: JobRef;
  index: number;
  /** Return (with more to do) after the first batch that ends past this many milliseconds. */
  budgetMs?: number;
  /** The shard's keys, already read by the planner from its stream (in-process runs only). */
  prefetched?: KeyList;
  migration?: string;
  signal?: AbortSignal;
  /** Paces the batches: each waits for its size before its transaction (shared by the shards of a job). */
  limiter?: RateLimiter;
  /** Called after every committed batch with what it added. */
  onBatch?: (delta: Counts, state: ShardState) => void;
  /**
   * This slice's number, 0 the first, where each slice runs in a task of its own: it runs only if it is
   * the shard's next one (ShardState.slices), and when it stops with more to do, the checkpoint records
   * that the one after it is next, for the driver to send.
   */
  slice?: number;
}

export interface SliceResult {
  done: boolean;
  state: ShardState;
  /** `slice` was not the shard's next one (`state.slices` is): nothing ran. */
  skipped?: true;
}

// A transaction's whole-entity lookups go out as parallel requests: the emulators answer two halves
// faster than one whole. Masked reads are small, and one request then costs the server less than two.
const LOOKUP_PARALLELISM = 2;
// Room left in a commit for the checkpoint and the request envelope.
const BYTE_HEADROOM = 0.8;
// Deciding a batch's entities stops after this long, well inside a transaction's 60 s idle limit.
const APPLY_BUDGET_MS = 20_000;

/**
 * Runs one time-boxed slice of a shard, from nothing but ids: loads the layout and the checkpoint from
 * Datastore, streams the rest of the range (one keys-only query, `__key__ > lastKey`, continued by
 * cursor only where the server pages), and commits each batch's writes together with the checkpoint
 * in one transaction that first re-reads the entities and the checkpoint. Keys that another worker (a
 * redelivered task, a second process) already committed are seen in the checkpoint and skipped, so
 * running a slice twice has the effect of running it once.
 */
export async function runShardSlice(options: SliceOptions): Promise<SliceResult> {
  const { store, job, index } = options;
  const [layoutEntity, shardEntity] = await store.lookup([jobKey(job), shardKey(job, index)]);
  const layout = layoutEntity && decodeLayout(layoutEntity);
  if (!isLive(layout)) throw clearedError(job, index);
  checkPlanMatches(layout, options.work, index);
  const state = shardEntity ? decodeShard(shardEntity) : freshShard(job, index, layout.shards[index]);
  if (state.closed) throw closedError(job, index);
  if (options.slice !== undefined && state.slices !== undefined && options.slice !== state.slices) return { done: state.done, state, skipped: true };
  if (state.done) return { done: true, state };
  const touched = options.work.touchedProperties && (await honoursPropertyMasks(store)) ? options.work.touchedProperties : undefined;
  // A before-image keeps the whole entity: an operation kept with undo reads entities whole, and still writes only what it touches.
  const slice = new Slice(options, layout, state, shardEntity !== undefined, options.work.undo ? undefined : touched, touched);
  const result = await slice.run();
  if (result.done || options.slice === undefined) return result;
  return { done: false, state: await slice.handOver(options.slice) };
}

interface BatchOutcome {
  consumed: number;
  state: ShardState;
  delta?: Counts;
  /** The checkpoint was written. */
  wrote: boolean;
  /** The checkpoint exists now (written by this batch or found): from here on, its absence means the job was cleared. */
  checkpointed: boolean;
  /** The operation's function was too slow for the whole batch in one transaction. */
  outOfTime?: boolean;
  /** What the consumed keys' writes took of the commit. */
  cost?: CommitCost;
}

class Slice {
  private readonly queue = new KeyQueue();
  private readonly source: AsyncGenerator<Key[]>;
  private exhausted = false;
  private size: number;
  /** The batch size, or less where the limiter grants less at once. */
  private readonly maxSize: number;
  /** What a commit may hold besides the checkpoint. */
  private readonly budget: CommitBudget;
  /** What a key cost the last commit, on average: the next batch takes as many keys as the budget holds at that cost. */
  private perKey?: CommitCost;
  /** The next batch's transaction, begun while this one commits (see commit). */
  private nextTransaction?: Promise<Uint8Array | string>;
  /** The version this slice's last commit left the checkpoint at: while the checkpoint still has it, it holds `state` (see commit). */
  private checkpointVersion?: string;

  constructor(
    private readonly options: SliceOptions,
    private readonly layout: JobLayout,
    private state: ShardState,
    private hasCheckpoint: boolean,
    /** The only properties the batches read (a property mask), or all. */
    private readonly touched: readonly string[] | undefined,
    /** The only properties the batches write, or all. */
    private readonly written: readonly string[] | undefined,
  ) {
    this.maxSize = Math.min(options.work.batchSize, options.limiter?.largestGrant ?? options.work.batchSize);
    this.size = this.maxSize;
    this.budget = { mutations: MAX_COMMIT_MUTATIONS - 1, bytes: options.store.maxRequestBytes * BYTE_HEADROOM };
    this.source = keySource(options.store, options.work, state, options.prefetched);
  }

  async run(): Promise<SliceResult> {
    const { store, work, budgetMs, signal } = this.options;
    const started = Date.now();
    try {
      for (;;) {
        if (signal?.aborted) return { done: false, state: this.state };
        await this.fill();
        const groupLimit = store.maxEntityGroupsPerTransaction;
        const keys = this.queue.peek(batchLength(this.queue.peek(this.size), work, this.size, groupLimit, this.perKey && { perKey: this.perKey, budget: this.budget }));
        let outcome: BatchOutcome;
        try {
          if (keys.length > 0) await work.prepareBatch?.(store, keys);
          // Paid before the transaction, for every key it may write: a retried batch pays again (never under budget).
          if (keys.length > 0 && this.options.limiter && !(await this.options.limiter.acquire(keys.length, signal))) return { done: false, state: this.state };
          outcome = await this.commit(keys, this.exhausted && keys.length === this.queue.length);
        } catch (error) {
          if (isDsMigrateError(error, 'TOO_MANY_ENTITY_GROUPS')) {
            // Either the backend just taught the store its limit (the next batch is formed with it), or the
            // writes reach groups the batcher could not foresee (a map returning other keys): halve the batch.
            if (groupLimit !== store.maxEntityGroupsPerTransaction) continue;
            if (keys.length > 1) {
              this.size = Math.max(1, keys.length >> 1);
              continue;
            }
          }
          // A closed or cleared job is another run's now: nothing more is written to it, not even the error.
          if (!isDsMigrateError(error, 'JOB_CLOSED') && !isDsMigrateError(error, 'JOB_CLEARED')) await recordFailure(store, this.layout, this.state.index, error);
          throw error;
        }
        this.hasCheckpoint ||= outcome.checkpointed;
        this.queue.drop(outcome.consumed);
        this.state = outcome.state;
        if (outcome.delta) this.options.onBatch?.(outcome.delta, this.state);
        if (outcome.cost && outcome.consumed > 0) this.perKey = averageCost(outcome.cost, outcome.consumed);
        if (outcome.wrote) await afterCommittedBatch();
        // A batch cut short by the time budget sets the size of the next ones; otherwise grow back.
        this.size = outcome.outOfTime ? Math.max(1, outcome.consumed) : Math.min(this.maxSize, this.size * 2);
        if (this.state.done) return { done: true, state: this.state };
        if (budgetMs !== undefined && Date.now() - started >= budgetMs) return { done: false, state: this.state };
      }
    } finally {
      await this.source.return(undefined);
      // A transaction begun for a batch that will not run holds nothing (it has read nothing), but is ended rather than left to idle out.
      const unused = this.nextTransaction;
      this.nextTransaction = undefined;
      if (unused) void unused.then((id) => store.rollback(id)).catch(() => undefined);
    }
  }

  /** Keeps more than a batch queued, so the last batch of the range is known to be the last. */
  private async fill(): Promise<void> {
    while (!this.exhausted && this.queue.length <= this.size) {
      const next = await this.source.next();
      if (next.done) this.exhausted = true;
      else this.queue.push(next.value);
    }
  }

  /**
   * One transaction: re-read the batch and the checkpoint, apply, write both. A checkpoint missing in a
   * shard that has none yet means a fresh shard only if the layout is live once it was read: the layout is
   * marked cleared before any checkpoint is deleted (clearJobState). The layout is read outside the
   * transaction, after it: read inside, every shard's first batch would contend for it on the classic
   * emulator, and a later read is as good a witness.
   */
  private async commit(keys: readonly Key[], finishing: boolean): Promise<BatchOutcome> {
    const { store, work, migration } = this.options;
    const expected = this.state;
    const ckptKey = shardKey(expected.job, expected.index);
    let take = keys.length;
    const begun = this.nextTransaction;
    this.nextTransaction = undefined;
    const known = this.checkpointVersion;
    this.checkpointVersion = undefined;
    let last: Transaction | undefined;
    const outcome = await store.transaction(
      async (tx) => {
        last = tx;
        const batch = keys.slice(0, take);
        const related = batch.flatMap((k) => work.relatedKeys(k));
        const others = [ckptKey, ...related];
        // A batch read with a property mask reads the checkpoint in the same request, with the same mask, once
        // this slice knows the version it last wrote: that version answered means the checkpoint is as this
        // slice wrote it, read in the transaction all the same; any other write (a fence, another worker) changes it.
        const alongside = this.touched !== undefined && known !== undefined && related.length === 0;
        const found = alongside ? await readAll(tx, [ckptKey, ...batch], this.touched) : this.touched ? await readAll(tx, batch, this.touched, others) : await readAll(tx, [...others, ...batch]);
        let checkpoint = found.get(ckptKey.toString());
        const unchanged = alongside && checkpoint !== undefined && versionAsRead(checkpoint) === known;
        if (alongside && checkpoint && !unchanged) checkpoint = await tx.get(ckptKey);
        if (!checkpoint && (this.hasCheckpoint || !(await layoutIsLive(store, expected.job)))) throw clearedError(expected.job, expected.index);
        const stored = unchanged ? expected : this.storedState(checkpoint, expected);
        const checkpointed = checkpoint !== undefined;
        if (stored.done) return { consumed: batch.length, state: stored, wrote: false, checkpointed };
        const groupLimit = store.maxEntityGroupsPerTransaction;
        const applied = await applyBatch(work, batch, found, {
          doneThrough: stored.lastKey,
          byteBudget: this.budget.bytes,
          mutationBudget: this.budget.mutations,
          groups: typeof groupLimit === 'number' ? { limit: groupLimit, read: new Set([...others, ...batch].map((k) => k.root.toString())) } : undefined,
          timeBudgetMs: APPLY_BUDGET_MS,
          migration,
          dryRun: false,
        });
        const through = applied.consumed > 0 ? batch[applied.consumed - 1] : undefined;
        const lastKey = through && (!stored.lastKey || Key.compare(through, stored.lastKey) > 0) ? through : stored.lastKey;
        const state: ShardState = {
          ...stored,
          lastKey,
          counts: addCounts({ ...stored.counts }, applied.delta),
          warnings: mergeWarnings(structuredClone(stored.warnings), applied.warnings),
          done: finishing && applied.consumed === keys.length,
          error: undefined,
        };
        // Keys all done by another worker: nothing to record.
        if (!state.done && lastKey === stored.lastKey) return { consumed: applied.consumed, state: stored, wrote: false, checkpointed };
        // Writes to keys the batch did not read (a map returning another entity) are read now, inside the
        // transaction, so that a concurrent write to them conflicts rather than being overwritten unseen.
        const { read } = applied;
        const unread = applied.puts.filter((e) => !read.has(e.key.toString())).map((e) => e.key);
        if (unread.length > 0) (await tx.lookup(unread)).forEach((entity, i) => entity && found.set(unread[i].toString(), entity));
        await keepMarkers(tx, markerChanges(work, applied, found));
        tx.upsert(encodeShard(state));
        if (work.undo) for (const { image } of batchImages(store, work.undo, operationOfJob(expected.job), applied, found)) tx.upsertEncoded(image);
        for (const entity of applied.puts) tx.upsert(this.written && !entity.partialOf && read.has(entity.key.toString()) ? onlyProperties(entity, this.written) : entity);
        for (const key of applied.deletes) tx.delete(key);
        // A shard's batches run one after another, each a round trip to begin, one to read and one to commit:
        // the next one's begin goes out with this commit. It reads nothing until this commit has answered.
        if (!state.done && !this.nextTransaction) this.nextTransaction = beginQuietly(store);
        return { consumed: applied.consumed, state, delta: applied.delta, wrote: true, checkpointed: true, outOfTime: applied.outOfTime, cost: applied.cost };
      },
      {
        begun,
        onRetry: () => {
          // Contention: retry a smaller batch, and start the next ones smaller too.
          take = Math.max(1, take >> 1);
          this.size = take;
        },
      },
    );
    this.checkpointVersion = last?.versionWritten(ckptKey);
    return outcome;
  }

  /**
   * Records on the checkpoint that the slice after `number` is the shard's next, before the driver sends
   * it (so that it finds itself due); unchanged when another delivery of this slice did so first. A crash
   * in between leaves the next slice recorded but unsent: a redelivery of this one, no longer the next,
   * sends it then (src/executors/cloud-tasks/pipeline.ts).
   */
  async handOver(number: number): Promise<ShardState> {
    const { store } = this.options;
    const { job, index } = this.state;
    return store.transaction(async (tx) => {
      const entity = await tx.get(shardKey(job, index));
      // None yet (every batch of this slice ran out of time before one committed): a fresh shard only while its job's layout is live, as in commit().
      if (!entity && (this.hasCheckpoint || !(await layoutIsLive(store, job)))) throw clearedError(job, index);
      const stored = this.storedState(entity, this.state);
      if (stored.slices !== undefined && stored.slices !== number) return stored;
      const next = { ...stored, slices: number + 1 };
      tx.upsert(encodeShard(next));
      return next;
    });
  }

  /** The checkpoint as read in the transaction (undefined: a fresh shard), checked against what this worker last saw. */
  private storedState(entity: Entity | undefined, expected: ShardState): ShardState {
    const { job, index } = expected;
    if (!entity) return expected;
    const stored = decodeShard(entity);
    if (stored.closed) throw closedError(job, index);
    // Never skip keys: a checkpoint behind the one this worker saw means the state was rewritten.
    if (expected.lastKey && (!stored.lastKey || Key.compare(stored.lastKey, expected.lastKey) < 0)) {
      throw new DsMigrateError('CONFLICT', `The checkpoint of shard ${index} of ${job.id} moved backwards.`, { job: job.id, shard: index });
    }
    return stored;
  }
}

/** A transaction begun ahead of its use: a failure is left for the store to meet by beginning again, never unhandled. */
function beginQuietly(store: Datastore): Promise<Uint8Array | string> {
  const begun = store.beginTransaction();
  begun.catch(() => undefined);
  return begun;
}

function averageCost(cost: CommitCost, keys: number): CommitCost {
  return { mutations: cost.mutations / keys, bytes: cost.bytes / keys, groups: cost.groups / keys };
}

/** What the batch changes of entities whose kind has unique fields, for their markers (src/model/unique.ts). */
function markerChanges(work: ShardWork, applied: AppliedBatch, found: ReadonlyMap<string, Entity>): MarkerChange[] {
  const changes: MarkerChange[] = [];
  // What it held before is looked up only for a kind with unique fields: most batches have none, and write hundreds.
  const add = (key: Key, after: Entity | undefined, before?: Entity) => {
    const unique = uniqueFieldsFor(work, key.kind);
    if (unique) changes.push({ unique, key, before: before ?? applied.originals.get(key.toString()) ?? found.get(key.toString()), after });
  };
  for (const entity of applied.puts) add(entity.key, entity);
  for (const key of applied.deletes) add(key, undefined);
  for (const { entity, claim } of applied.markers) add(entity.key, claim ? entity : undefined, entity);
  return changes;
}

/**
 * The entities at these keys (deduplicated), by key string, read in parallel requests inside the
 * transaction: `keys` with only `properties` when given, and `wholeKeys` (the checkpoint, a copy's
 * targets) in full alongside.
 */
async function readAll(tx: Transaction, keys: readonly Key[], properties?: readonly string[], wholeKeys: readonly Key[] = []): Promise<Map<string, Entity>> {
  const unique = new Map<string, Key>();
  for (const key of keys) unique.set(key.toString(), key);
  const names = [...unique.keys()];
  const all = [...unique.values()];
  const step = Math.max(1, Math.ceil(all.length / (properties ? 1 : LOOKUP_PARALLELISM)));
  const starts: number[] = [];
  for (let i = 0; i < all.length; i += step) starts.push(i);
  const [found, results] = await Promise.all([
    wholeKeys.length > 0 ? readAll(tx, wholeKeys) : new Map<string, Entity>(),
    Promise.all(starts.map((i) => tx.lookup(all.slice(i, i + step), properties))),
  ]);
  results.forEach((entities, chunk) => entities.forEach((entity, i) => entity && found.set(names[starts[chunk] + i], entity)));
  return found;
}

/** The shard's keys after its checkpoint: the planner's copy if given, otherwise its range queried in key order. */
async function* keySource(store: Datastore, work: ShardWork, state: ShardState, prefetched?: KeyList): AsyncGenerator<Key[]> {
  if (prefetched) {
    yield* chunks(prefetched, state.lastKey ? firstAfter(prefetched, state.lastKey) : 0);
    return;
  }
  // In queries of at most RANGE_QUERY_KEYS, held packed: the Firestore-mode emulator answers a query whole.
  let after = state.lastKey ?? (state.startExclusive ? state.start : undefined);
  for (;;) {
    const page = store.packedKeys({
      kind: work.kind,
      namespace: state.namespace,
      filters: pushedDown(work.filters),
      after,
      from: after ? undefined : state.start,
      before: state.endInclusive ? undefined : state.end,
      through: state.endInclusive ? state.end : undefined,
      orderByKey: true,
      limit: RANGE_QUERY_KEYS,
    });
    let read = 0;
    for await (const keys of page) {
      read += keys.length;
      yield* chunks(keys, 0);
      after = keys.at(keys.length - 1) ?? after;
    }
    if (read < RANGE_QUERY_KEYS) return;
  }
}

/** Keys per query of a shard that streams its range. */
const RANGE_QUERY_KEYS = 100_000;

const CHUNK_KEYS = 1000;

/** The keys from `from` on, decoded a chunk at a time: packed keys stay packed until their batch comes. */
function* chunks(keys: KeyList, from: number): Generator<Key[]> {
  for (let i = from; i < keys.length; i += CHUNK_KEYS) yield [...keys.slice(i, i + CHUNK_KEYS)];
}

/** The index of the first key after `key` in an ordered list. */
function firstAfter(keys: KeyList, key: Key): number {
  let low = 0;
  let high = keys.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (Key.compare(keys.at(middle)!, key) > 0) high = middle;
    else low = middle + 1;
  }
  return low;
}

function checkPlanMatches(layout: JobLayout, work: ShardWork, index: number): void {
  if (layout.type !== work.type || layout.kind !== work.kind) {
    throw new DsMigrateError('CONFLICT', `Job ${layout.job.id} was laid out for ${layout.type} on ${layout.kind}, not ${work.type} on ${work.kind}.`, { job: layout.job.id });
  }
  if (!layout.shards[index]) throw new DsMigrateError('BAD_INPUT', `Job ${layout.job.id} has no shard ${index}.`, { job: layout.job.id, shard: index });
}

/** The job was closed under this worker: another run took the lease and changed direction. */
function closedError(job: JobRef, index: number): DsMigrateError {
  return new DsMigrateError('JOB_CLOSED', `Shard ${index} of job ${job.id} was closed by another run (it took the lease and changed direction); this run stops and writes nothing more.`, {
    job: job.id,
    shard: index,
  });
}

/** Whether the job's layout exists and is not being cleared (src/sharding/progress.ts clearJobState). */
async function layoutIsLive(store: Datastore, job: JobRef): Promise<boolean> {
  return isLive(await loadLayout(store, job));
}

/**
 * The job's state was cleared under this worker: its migration finished, or was restarted or backed
 * out, in another run (a late duplicate task, or a run that lost its lease).
 */
function clearedError(job: JobRef, index: number): DsMigrateError {
  return new DsMigrateError(
    'JOB_CLEARED',
    `The state of job ${job.id} was cleared while shard ${index} ran (its migration finished, or another run restarted or reversed it); this run stops and writes nothing more.`,
    {
      job: job.id,
      shard: index,
    },
  );
}

/** Notes the error on the shard for `status`; best effort, as the error itself is what matters. */
async function recordFailure(store: Datastore, layout: JobLayout, index: number, error: unknown): Promise<void> {
  const key = shardKey(layout.job, index);
  await store
    .transaction(
      async (tx) => {
        const entity = await tx.get(key);
        const state = entity ? decodeShard(entity) : freshShard(layout.job, index, layout.shards[index]);
        if (!state.closed) tx.upsert(encodeShard({ ...state, error: errorMessage(error).slice(0, 1500) }));
      },
      { attempts: 2 },
    )
    .catch(() => undefined);
}
