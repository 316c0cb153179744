import type { google } from '@google-cloud/datastore/build/protos/protos';
import pLimit from 'p-limit';
import { DsMigrateError, errorMessage } from '../errors';
import { chunkBy } from './batching';
import type { DatastoreChannel } from './channel';
import { encodeCommitRequests } from './commit-request';
import type { CommitResult } from './commit-response';
import { openConnection, type CommitRpc, type ConnectionOptions, type ResolvedConnection } from './connection';
import type { LookupRpc } from './lookup-response';
import type { KeysQueryRpc } from './keys-query';
import { Entity } from './entity';
import { Key } from './keys';
import { propertyPath } from './mask-paths';
import { asKey, type OfficialKey } from './official-client';
import type { PackedKeys } from './packed-keys';
import { CLASSIC_ENTITY_GROUP_LIMIT, EMULATOR_MAX_REQUEST_BYTES, MAX_COMMIT_MUTATIONS, MAX_LOOKUP_KEYS, MAX_REQUEST_BYTES } from './limits';
import { buildQuery, type QuerySpec } from './query';
import { GrpcCode, grpcCode, TRANSACTION_RETRY_CODES, UNKNOWN_OUTCOME_CODES, withRetry, type RetryOptions } from './retry';
import { entityOf, Transaction, type Mutation, type TransactionBackend } from './transaction';

export type RpcMethod = 'lookup' | 'commit' | 'runQuery' | 'runAggregationQuery' | 'beginTransaction' | 'rollback' | 'allocateIds' | 'reserveIds';

/** What is about to go on the wire, for tests and metrics. */
export interface RpcEvent {
  method: RpcMethod;
  keys?: number;
  mutations?: number;
  bytes?: number;
  transactional?: boolean;
}

export interface StoreOptions extends ConnectionOptions {
  /**
   * Entity groups one transaction may touch: 'auto' (the default) learns the classic backend's limit
   * of 25 from its first rejection; a number fixes it; null means unlimited (Firestore in Datastore mode).
   */
  maxEntityGroupsPerTransaction?: number | null | 'auto';
  retry?: RetryOptions;
  onRpc?: (event: RpcEvent) => void;
  /** Parallel RPCs of one large lookup or save (concurrent calls each have their own). */
  concurrency?: number;
  /**
   * Keep one transaction begun ahead, for the next `transaction()` to start with: a run's lifecycle makes
   * its transactions one after another, and each then saves its begin's round trip. Costs one more begin
   * and, when none follows within a few seconds, a rollback. The CLI turns it on.
   */
  beginAhead?: boolean;
}

export interface TransactionOptions extends RetryOptions {
  /**
   * What to do when the commit answers DEADLINE_EXCEEDED or UNAVAILABLE, after which it may or may not
   * have been applied. 'retry' (the default) runs the function again in a new transaction, which is right
   * only when the function is idempotent by construction: it re-reads what it depends on and finds its
   * own earlier commit there (a checkpoint, a marker, a state it moves from). A read-modify-write that is
   * not (an increment) would be applied twice: pass 'fail', and the transaction throws
   * COMMIT_OUTCOME_UNKNOWN instead, for the caller to find out.
   */
  unknownOutcome?: 'retry' | 'fail';
  /**
   * A transaction begun beforehand (beginTransaction), for the first attempt: a caller running
   * transactions one after another begins the next while the last commits, and saves a round trip each.
   * Retries begin their own, as does a first attempt whose early begin failed.
   */
  begun?: Promise<Uint8Array | string>;
}

type RawClient = ResolvedConnection['client'];

interface QueryPage<T extends { length: number }> {
  items: T;
  endCursor?: Uint8Array | string;
  moreResults: string;
}

/** Longer than the 60 s after which Firestore frees an abandoned transaction's locks. */
const TRANSACTION_RETRY_MS = 90_000;

/** A call's deadline; retries (withRetry) are this package's own. */
const CALL_TIMEOUT_MS = 120_000;
/**
 * A transaction begun ahead is used only this soon: begun long before its first read, an optimistic
 * backend would read an older snapshot and more likely abort at commit (still safely).
 */
const SPARE_MAX_AGE_MS = 5_000;
const QUERY_TIMEOUT_MS = 600_000;

/**
 * The one gateway to Datastore: batching to production limits, retries on transient errors,
 * lossless entities, streaming queries and transactions.
 */
export class Datastore {
  readonly projectId: string;
  readonly databaseId: string;
  readonly emulatorHost?: string;
  private readonly channel: DatastoreChannel;
  private readonly client: RawClient;
  private readonly keysQuery: KeysQueryRpc;
  private readonly lookupRpc: LookupRpc;
  private readonly commitRpc: CommitRpc;
  private readonly options: StoreOptions;
  private entityGroupLimit: number | null | undefined;
  private aggregationSupported: boolean | undefined;
  /** The transaction begun ahead (StoreOptions.beginAhead), and when. */
  private spare?: { id: Promise<Uint8Array | string>; at: number };
  /** Bytes one request may carry: the production limit, or the emulators' smaller one. */
  readonly maxRequestBytes: number;

  private constructor(connection: ResolvedConnection, options: StoreOptions) {
    this.projectId = connection.projectId;
    this.databaseId = connection.databaseId;
    this.emulatorHost = connection.emulatorHost;
    this.channel = connection.channel;
    this.client = connection.client;
    this.keysQuery = connection.keysQuery;
    this.lookupRpc = connection.lookup;
    this.commitRpc = connection.commit;
    this.options = options;
    const configured = options.maxEntityGroupsPerTransaction ?? 'auto';
    this.entityGroupLimit = configured === 'auto' ? undefined : configured;
    this.maxRequestBytes = connection.emulatorHost ? EMULATOR_MAX_REQUEST_BYTES : MAX_REQUEST_BYTES;
  }

  static async connect(options: StoreOptions = {}): Promise<Datastore> {
    return new Datastore(await openConnection(options), options);
  }

  /** The entity-group limit in force: a number, null for none, or undefined while not yet learned. */
  get maxEntityGroupsPerTransaction(): number | null | undefined {
    return this.entityGroupLimit;
  }

  async close(): Promise<void> {
    // Not waited for: a transaction that read nothing holds nothing, and the server lets it expire.
    this.takeSpare()
      ?.then((id) => this.rollback(id))
      .catch(() => undefined);
    this.channel.close();
  }

  key(...args: Parameters<typeof Key.of>): Key {
    return Key.of(...args);
  }

  private emit(event: RpcEvent): void {
    this.options.onRpc?.(event);
  }

  private partition(namespace = ''): google.datastore.v1.IPartitionId {
    return { projectId: this.projectId, databaseId: this.databaseId, namespaceId: namespace };
  }

  /** A call outside any transaction: it is retried by itself, on ABORTED (contention, nothing applied) too. */
  private retrying<T>(fn: () => Promise<T>): Promise<T> {
    return withRetry(fn, { codes: TRANSACTION_RETRY_CODES, ...this.options.retry });
  }

  /** Rewrites the classic backend's rejection as a typed error, learning the limit when set to 'auto'. */
  private translate(error: unknown): unknown {
    if (grpcCode(error) === GrpcCode.INVALID_ARGUMENT && /too many entity groups/i.test(errorMessage(error))) {
      if (this.entityGroupLimit === undefined) this.entityGroupLimit = CLASSIC_ENTITY_GROUP_LIMIT;
      return new DsMigrateError('TOO_MANY_ENTITY_GROUPS', `The backend allows at most ${CLASSIC_ENTITY_GROUP_LIMIT} entity groups per transaction.`, {}, { cause: error });
    }
    return error;
  }

  /**
   * Runs one call's requests, at most `concurrency` at once. The limit is the call's own: shared by the
   * store, it made concurrent transactions queue behind each other's reads, a round trip each.
   */
  private async fanOut<T>(requests: readonly T[], send: (request: T) => Promise<void>): Promise<void> {
    if (requests.length === 1) return send(requests[0]);
    const limit = pLimit(this.options.concurrency ?? 8);
    await Promise.all(requests.map((request) => limit(() => send(request))));
  }

  // ---- lookups ----

  /**
   * The entities at these keys, in the same order (undefined where missing). With `properties`, only those are read (a
   * property mask): the entities come back partial (see Entity.partialOf), and are written partially.
   */
  async lookup(given: readonly (Key | OfficialKey)[], transaction?: Uint8Array | string, properties?: readonly string[]): Promise<(Entity | undefined)[]> {
    // @google-cloud/datastore's keys are taken too, converted exactly (src/datastore/official-client.ts).
    const keys = given.map(asKey);
    const found = new Map<string, Entity>();
    const batches = chunkBy(keys, MAX_LOOKUP_KEYS);
    await this.fanOut(batches, (batch) => this.lookupBatch(batch, found, transaction, properties));
    return keys.map((k) => found.get(k.toString()));
  }

  async get(key: Key | OfficialKey, transaction?: Uint8Array | string): Promise<Entity | undefined> {
    return (await this.lookup([key], transaction))[0];
  }

  private async lookupBatch(keys: readonly Key[], found: Map<string, Entity>, transaction?: Uint8Array | string, properties?: readonly string[]): Promise<void> {
    let pending = keys;
    const paths = properties?.map(propertyPath);
    // The server may defer some keys; ask again for those until none is left.
    while (pending.length > 0) {
      const request = { projectId: this.projectId, databaseId: this.databaseId, keys: pending, transaction, paths };
      this.emit({ method: 'lookup', keys: pending.length, transactional: transaction !== undefined });
      const call = () => this.lookupRpc(request, CALL_TIMEOUT_MS);
      let response;
      try {
        response = transaction ? await call() : await this.retrying(call);
      } catch (error) {
        throw this.translate(error);
      }
      for (const result of response.found) {
        const entity = Entity.read(result.key, result.properties, properties, result.bytes, result.version);
        found.set(entity.key.toString(), entity);
      }
      pending = response.deferred;
    }
  }

  // ---- writes ----

  /** Non-transactional writes, split into legal commits and sent in parallel. */
  async commit(mutations: readonly Mutation[]): Promise<void> {
    if (mutations.length === 0) return;
    const requests = encodeCommitRequests({ projectId: this.projectId, databaseId: this.databaseId, mode: 'NON_TRANSACTIONAL' }, mutations, {
      mutations: MAX_COMMIT_MUTATIONS,
      bytes: this.maxRequestBytes,
    });
    await this.fanOut(requests, async (request) => {
      await this.retrying(() => {
        this.emit({ method: 'commit', mutations: request.mutations, bytes: request.bytes.length, transactional: false });
        return this.commitRpc(request, CALL_TIMEOUT_MS);
      });
    });
    for (const m of mutations) entityOf(m)?.markClean();
  }

  async save(entities: readonly Entity[]): Promise<void> {
    await this.commit(entities.map((upsert) => ({ upsert })));
  }

  async delete(keys: readonly (Key | OfficialKey)[]): Promise<void> {
    await this.commit(keys.map((k) => ({ delete: asKey(k) })));
  }

  /** Sends one transaction's commit: its mutations must fit in one request, as they land together. */
  private async commitTransaction(transaction: Uint8Array | string, mutations: readonly Mutation[]): Promise<CommitResult> {
    if (mutations.length > MAX_COMMIT_MUTATIONS) {
      throw new DsMigrateError('BAD_INPUT', `A transaction may hold at most ${MAX_COMMIT_MUTATIONS} mutations; this one has ${mutations.length}.`);
    }
    const [request] = encodeCommitRequests({ projectId: this.projectId, databaseId: this.databaseId, mode: 'TRANSACTIONAL', transaction }, mutations);
    if (request.bytes.length > this.maxRequestBytes) {
      throw new DsMigrateError(
        'BAD_INPUT',
        `A transaction's commit would be about ${(request.bytes.length / 1048576).toFixed(1)} MiB; the limit here is ${(this.maxRequestBytes / 1048576).toFixed(1)} MiB.`,
      );
    }
    this.emit({ method: 'commit', mutations: request.mutations, bytes: request.bytes.length, transactional: true });
    try {
      return await this.commitRpc(request, CALL_TIMEOUT_MS);
    } catch (error) {
      throw this.translate(error);
    }
  }

  async beginTransaction(readOnly = false): Promise<Uint8Array | string> {
    this.emit({ method: 'beginTransaction' });
    const response = await this.retrying(() =>
      this.client.beginTransaction({ projectId: this.projectId, databaseId: this.databaseId, transactionOptions: readOnly ? { readOnly: {} } : { readWrite: {} } }, CALL_TIMEOUT_MS),
    );
    return response.transaction!;
  }

  /**
   * Ends a transaction without committing. Retried, since a transaction left open keeps its locks on
   * Firestore until it idles out; a failure is then ignored: the transaction ends by itself in the end.
   */
  async rollback(transaction: Uint8Array | string): Promise<void> {
    await this.retrying(() => {
      this.emit({ method: 'rollback' });
      return this.client.rollback({ projectId: this.projectId, databaseId: this.databaseId, transaction }, CALL_TIMEOUT_MS);
    }).catch(() => undefined);
  }

  /** The transaction begun ahead, if young enough to use; an older one is rolled back. */
  private takeSpare(): Promise<Uint8Array | string> | undefined {
    const spare = this.spare;
    this.spare = undefined;
    if (!spare || Date.now() - spare.at <= SPARE_MAX_AGE_MS) return spare?.id;
    spare.id.then((id) => this.rollback(id)).catch(() => undefined);
    return undefined;
  }

  /** The calls a Transaction makes on this store, bound to its id. */
  private transactionBackend(id: Uint8Array | string): TransactionBackend {
    return {
      lookup: (keys, properties) => this.lookup(keys, id, properties),
      commit: (mutations) => this.commitTransaction(id, mutations),
      rollback: () => this.rollback(id),
    };
  }

  /**
   * Runs `fn` in a read-write transaction and commits its mutations. ABORTED (contention) and transient
   * errors retry the whole function with backoff; `onRetry` lets the caller shrink its work first. A commit
   * whose outcome is unknown is retried too, unless `unknownOutcome: 'fail'` (see TransactionOptions).
   */
  async transaction<T>(fn: (tx: Transaction) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    const { unknownOutcome = 'retry', begun, ...retry } = options;
    let early = begun ?? this.takeSpare();
    if (this.options.beginAhead && !this.spare) {
      const id = this.beginTransaction();
      id.catch(() => undefined);
      this.spare = { id, at: Date.now() };
    }
    return withRetry(
      async () => {
        const ready = early && (await early.catch(() => undefined));
        early = undefined;
        const id = ready ?? (await this.beginTransaction());
        const tx = new Transaction(this.transactionBackend(id), id);
        let result: T;
        try {
          result = await fn(tx);
        } catch (error) {
          await tx.rollback();
          throw error;
        }
        try {
          await tx.commit();
        } catch (error) {
          if (unknownOutcome === 'fail' && UNKNOWN_OUTCOME_CODES.includes(grpcCode(error) ?? -1)) {
            throw new DsMigrateError(
              'COMMIT_OUTCOME_UNKNOWN',
              `A transaction's commit answered ${errorMessage(error)}: it may or may not have been applied, and it is not retried (unknownOutcome: 'fail'). ` +
                'Read its entities to find out, or make the transaction idempotent (a marker written with it) and let it retry.',
              { mutations: tx.size },
              { cause: error },
            );
          }
          throw error;
        }
        return result;
      },
      // Firestore (and its emulator) keeps the locks of a transaction whose client died until the
      // transaction idles out after 60 s: contention must be outlasted by time, not by a few attempts.
      { codes: TRANSACTION_RETRY_CODES, attempts: 100, maxElapsedMs: TRANSACTION_RETRY_MS, ...this.options.retry, ...retry },
    );
  }

  // ---- queries ----

  /**
   * Streams a query's results batch by batch, as the server returns them. One query is started and
   * continued with its cursor only when the server stops early (the classic backend pages at 300),
   * so a shard's scan costs one query start, never one per batch.
   */
  queryBatches(spec: QuerySpec): AsyncGenerator<Entity[]> {
    return this.pages(spec, async (request) => {
      const response = await this.client.runQuery(request, QUERY_TIMEOUT_MS);
      const batch = response.batch!;
      return { items: (batch.entityResults ?? []).map((r) => Entity.fromProto(r.entity!)), endCursor: batch.endCursor ?? undefined, moreResults: String(batch.moreResults) };
    });
  }

  async *query(spec: QuerySpec): AsyncGenerator<Entity> {
    for await (const batch of this.queryBatches(spec)) yield* batch;
  }

  /** Like queryBatches, keys only, decoded straight from the wire. */
  async *keys(spec: Omit<QuerySpec, 'keysOnly'>): AsyncGenerator<Key[]> {
    for await (const keys of this.packedKeys(spec)) yield keys.toArray();
  }

  /** Like keys, each batch kept as the keys' wire bytes: for callers that hold many keys a while (src/datastore/packed-keys.ts). */
  packedKeys(spec: Omit<QuerySpec, 'keysOnly'>): AsyncGenerator<PackedKeys> {
    return this.pages({ ...spec, keysOnly: true }, async (request) => {
      const page = await this.keysQuery(request, QUERY_TIMEOUT_MS);
      return { items: page.keys, endCursor: page.endCursor, moreResults: page.moreResults };
    });
  }

  private async *pages<T extends { length: number }>(spec: QuerySpec, run: (request: google.datastore.v1.IRunQueryRequest) => Promise<QueryPage<T>>): AsyncGenerator<T> {
    const query = buildQuery(spec, this.projectId, this.databaseId);
    const partitionId = this.partition(spec.namespace);
    let remaining = spec.limit;
    const fetch = (cursor: Uint8Array | string | undefined) =>
      this.retrying(() => {
        this.emit({ method: 'runQuery' });
        const page = { ...query, startCursor: cursor, limit: remaining !== undefined ? { value: remaining } : query.limit };
        return run({ projectId: this.projectId, databaseId: this.databaseId, partitionId, query: page });
      });
    let next: Promise<QueryPage<T>> | undefined = fetch(undefined);
    try {
      while (next) {
        const { items, endCursor, moreResults } = await next;
        next = undefined;
        if (remaining !== undefined) remaining -= items.length;
        const finished = items.length === 0 || moreResults === 'NO_MORE_RESULTS' || moreResults === 'MORE_RESULTS_AFTER_CURSOR' || (remaining !== undefined && remaining <= 0);
        // Ask for the next page while the caller works on this one.
        if (!finished) next = fetch(endCursor);
        if (items.length > 0) yield items;
      }
    } finally {
      // A caller that stops early leaves the prefetched page behind; its failure must not go unhandled.
      next?.catch(() => undefined);
    }
  }

  /** The number of entities, where the backend can count cheaply (aggregation); otherwise undefined. */
  async count(spec: Omit<QuerySpec, 'keysOnly' | 'limit'>): Promise<number | undefined> {
    if (this.aggregationSupported === false) return undefined;
    const nestedQuery = buildQuery(spec, this.projectId, this.databaseId);
    try {
      this.emit({ method: 'runAggregationQuery' });
      const response = await this.retrying(() =>
        this.client.runAggregationQuery(
          { projectId: this.projectId, databaseId: this.databaseId, partitionId: this.partition(spec.namespace), aggregationQuery: { nestedQuery, aggregations: [{ alias: 'n', count: {} }] } },
          CALL_TIMEOUT_MS,
        ),
      );
      this.aggregationSupported = true;
      const value = response.batch?.aggregationResults?.[0]?.aggregateProperties?.n?.integerValue;
      return value === undefined || value === null ? 0 : Number(value);
    } catch (error) {
      if (grpcCode(error) === GrpcCode.UNIMPLEMENTED) {
        this.aggregationSupported = false;
        return undefined;
      }
      throw error;
    }
  }

  /** Every namespace holding data, where the backend answers metadata queries; otherwise undefined. */
  async namespaces(): Promise<string[] | undefined> {
    try {
      const names: string[] = [];
      for await (const batch of this.keys({ kind: '__namespace__' })) {
        for (const key of batch) names.push(key.name ?? '');
      }
      return names.sort();
    } catch (error) {
      if (grpcCode(error) === GrpcCode.INVALID_ARGUMENT || grpcCode(error) === GrpcCode.UNIMPLEMENTED) return undefined;
      throw error;
    }
  }

  // ---- ids ----

  /** Tells Datastore that these ids are taken, so automatic allocation never hands them out. */
  async reserveIds(keys: readonly Key[]): Promise<void> {
    const withIds = keys.filter((k) => k.id !== undefined);
    for (const batch of chunkBy(withIds, 500)) {
      this.emit({ method: 'reserveIds', keys: batch.length });
      await this.retrying(() =>
        this.client.reserveIds({ projectId: this.projectId, databaseId: this.databaseId, keys: batch.map((k) => k.toProto(this.projectId, this.databaseId)) }, CALL_TIMEOUT_MS),
      );
    }
  }

  async allocateIds(incomplete: Key, count: number): Promise<Key[]> {
    this.emit({ method: 'allocateIds', keys: count });
    const proto = incomplete.toProto(this.projectId, this.databaseId);
    const response = await this.retrying(() => this.client.allocateIds({ projectId: this.projectId, databaseId: this.databaseId, keys: Array.from({ length: count }, () => proto) }, CALL_TIMEOUT_MS));
    return (response.keys ?? []).map((k) => Key.fromProto(k));
  }
}
