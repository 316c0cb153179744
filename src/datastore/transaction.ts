import { DsMigrateError } from '../errors';
import type { CommitResult } from './commit-response';
import type { EncodedEntity } from './encoded-entity';
import type { Entity } from './entity';
import type { Key } from './keys';

export type Mutation = { upsert: Entity } | { insert: Entity } | { update: Entity } | { delete: Key } | { upsertEncoded: EncodedEntity };

/** The Entity a mutation writes, which a commit that landed marks clean. */
export function entityOf(mutation: Mutation): Entity | undefined {
  return 'upsert' in mutation ? mutation.upsert : 'insert' in mutation ? mutation.insert : 'update' in mutation ? mutation.update : undefined;
}

/**
 * The calls a transaction makes on its store, bound to its id. Datastore (store.ts) hands one to each
 * transaction it opens, so this file never imports the store back and the store keeps its transactional
 * commit private.
 */
export interface TransactionBackend {
  lookup(keys: readonly Key[], properties?: readonly string[]): Promise<(Entity | undefined)[]>;
  commit(mutations: readonly Mutation[]): Promise<CommitResult>;
  rollback(): Promise<void>;
}

/**
 * A read-write transaction. Reads see a consistent snapshot; writes are buffered and sent in one commit,
 * so a batch's data and its checkpoint land together or not at all.
 */
export class Transaction {
  private readonly mutations = new Map<string, Mutation>();
  /** Whole reads started ahead by prefetch, by key string. */
  private readonly prefetched = new Map<string, Promise<Entity | undefined>>();
  private done = false;
  /** What the commit answered, once it landed. */
  private committed: CommitResult | undefined;

  constructor(
    private readonly backend: TransactionBackend,
    readonly id: Uint8Array | string,
  ) {}

  /** With `properties`, reads only those (see Datastore.lookup). */
  async lookup(keys: readonly Key[], properties?: readonly string[]): Promise<(Entity | undefined)[]> {
    this.ensureOpen();
    if (properties || this.prefetched.size === 0) return this.backend.lookup(keys, properties);
    const rest = keys.filter((k) => !this.prefetched.has(k.toString()));
    const read = rest.length > 0 ? this.backend.lookup(rest) : Promise.resolve([]);
    const [fetched, direct] = await Promise.all([Promise.all(keys.map((k) => this.prefetched.get(k.toString()))), read]);
    let next = 0;
    // A copy each time: a caller may change what it was given.
    return fetched.map((entity, i) => (this.prefetched.has(keys[i].toString()) ? entity?.snapshot() : direct[next++]));
  }

  /**
   * Starts reading these keys whole, in one request; a later whole read of any of them in this
   * transaction is answered from it. A transaction's reads of a key all see the same snapshot and its
   * own writes are buffered here, so the answer is the one a second request would get, a round trip
   * sooner. A failed prefetch fails the reads that use it.
   */
  prefetch(keys: readonly Key[]): void {
    this.ensureOpen();
    const missing = keys.filter((k) => !this.prefetched.has(k.toString()));
    if (missing.length === 0) return;
    const read = this.backend.lookup(missing);
    missing.forEach((k, i) => {
      const entity = read.then((found) => found[i]);
      // Handled here too: a read nobody came for must not fail the process; one that does still sees the error.
      entity.catch(() => undefined);
      this.prefetched.set(k.toString(), entity);
    });
  }

  async get(key: Key): Promise<Entity | undefined> {
    return (await this.lookup([key]))[0];
  }

  /** The last write to a key wins, as Datastore requires one mutation per key per commit. */
  upsert(entity: Entity): void {
    this.add(entity.key, { upsert: entity });
  }
  /** An entity encoded beforehand (src/datastore/encoded-entity.ts). */
  upsertEncoded(entity: EncodedEntity): void {
    this.add(entity.key, { upsertEncoded: entity });
  }
  insert(entity: Entity): void {
    this.add(entity.key, { insert: entity });
  }
  delete(key: Key): void {
    this.add(key, { delete: key });
  }

  get size(): number {
    return this.mutations.size;
  }

  private add(key: Key, mutation: Mutation): void {
    this.ensureOpen();
    if (!key.isComplete) throw new DsMigrateError('BAD_INPUT', `Cannot write ${key} in a transaction: its key has no id or name.`);
    this.mutations.set(key.toString(), mutation);
  }

  private ensureOpen(): void {
    if (this.done) throw new DsMigrateError('BAD_INPUT', 'The transaction has already been committed or rolled back.');
  }

  async commit(): Promise<void> {
    this.ensureOpen();
    this.done = true;
    try {
      this.committed = await this.backend.commit([...this.mutations.values()]);
    } catch (error) {
      // A commit that failed may never have reached the server, which then keeps the transaction's locks
      // (Firestore: until it idles out, a minute) and stalls every other transaction on those entities.
      // Rolling back frees them; after a commit that did apply, the rollback is refused, harmlessly.
      await this.backend.rollback();
      throw error;
    }
    for (const m of this.mutations.values()) entityOf(m)?.markClean();
  }

  /** The version this transaction's commit left the entity at `key` at: undefined before it landed, or where it did not write the key. */
  versionWritten(key: Key): string | undefined {
    if (!this.committed) return undefined;
    let index = 0;
    for (const written of this.mutations.keys()) {
      if (written === key.toString()) return this.committed.versionAt(index);
      index++;
    }
    return undefined;
  }

  async rollback(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.backend.rollback();
  }
}
