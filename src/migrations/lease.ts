import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeStored, leaseKey } from '../control';
import { Entity, type Datastore, type Key, type Transaction } from '../datastore';
import { DsMigrateError, errorMessage } from '../errors';

export interface LeaseHolder {
  owner: string;
  command: string;
  acquiredAt: Date;
  expiresAt: Date;
}

/** A process's own owner name: host, pid and a random part (pids repeat across containers). */
export function processOwner(): string {
  return `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
}

/** The owner name of a Cloud Tasks run: the run, not any one process, holds the lease. */
export function runOwner(runId: string): string {
  return `run:${runId}`;
}

function decodeHolder(entity: Entity): LeaseHolder {
  return decodeStored(entity, { owner: 'string', command: 'string', acquiredAt: 'date', expiresAt: 'date' });
}

/** A lease with more than this share of its time to live left was renewed just now: renewing it again writes nothing. */
const FRESH = 0.9;

/** Each store's renewals in flight, by namespace and owner (Lease.renewalOnce). */
const renewals = new WeakMap<Datastore, Map<string, Promise<number | undefined>>>();

function renewalsInFlight(store: Datastore): Map<string, Promise<number | undefined>> {
  let inFlight = renewals.get(store);
  if (!inFlight) renewals.set(store, (inFlight = new Map()));
  return inFlight;
}

/**
 * The one lease of a control namespace: one entity with an owner and an expiry, taken, renewed and
 * released in transactions. Whoever holds it may change the namespace's migrations; everyone else
 * waits or is refused. The owner is a process (`dsmigrate migrate`) or a Cloud Tasks run, whose
 * tasks renew it as they run. A holder that dies frees it when it expires; `dsmigrate unlock`
 * breaks it at once, and the holder then stops: its next lifecycle step checks the lease in the
 * same transaction (`assertHeld`), and a local run is aborted within one batch.
 */
export class Lease {
  private readonly key: Key;
  /** The background renewals' chain: its pending timer, and its identity, so that a stopped chain's renewal in flight schedules no other. */
  private renewal?: { timer?: NodeJS.Timeout };
  private readonly lost = new AbortController();
  /** The expiry of this holder's last committed write: past it, a holder that could not renew must assume the lease gone. */
  private expiresAt = 0;
  /** Released by this object, and not acquired since: a second release (a run that finished, then its driver's cleanup) has nothing to do. */
  private released = false;

  constructor(
    private readonly store: Datastore,
    readonly namespace: string,
    readonly owner: string,
    private readonly ttlMs: number,
  ) {
    if (!(Number.isFinite(ttlMs) && ttlMs >= 1000))
      throw new DsMigrateError('BAD_INPUT', `The lease's time to live must be at least 1 second, not ${ttlMs} ms (lockTtlSeconds).`, { field: 'lockTtlSeconds' });
    this.key = leaseKey(namespace);
  }

  static async holder(store: Datastore | Transaction, namespace: string): Promise<LeaseHolder | undefined> {
    const entity = await store.get(leaseKey(namespace));
    return entity && decodeHolder(entity);
  }

  /** Read-only, so that tests can check which expiry a failed renewal leaves in force. */
  get believedExpiry(): number {
    return this.expiresAt;
  }

  /** Aborted when the lease is lost; its reason is the LEASE_LOST error to stop with. */
  get signal(): AbortSignal {
    return this.lost.signal;
  }

  /** Takes the lease, waiting up to `waitMs` for another holder's; LEASE_HELD, naming the holder, if it stays held. */
  async acquire(command: string, waitMs = 0): Promise<void> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const holder = await this.store.transaction(async (tx): Promise<LeaseHolder | number> => {
        const current = await Lease.holder(tx, this.namespace);
        if (current && current.owner !== this.owner && current.expiresAt.getTime() > Date.now()) return current;
        return this.write(tx, command, current?.owner === this.owner ? current.acquiredAt : new Date());
      });
      if (typeof holder === 'number') {
        this.expiresAt = holder;
        this.released = false;
        return;
      }
      if (Date.now() >= deadline) {
        throw new DsMigrateError(
          'LEASE_HELD',
          `Another run holds the migration lock: ${holder.owner} (${holder.command}), since ${holder.acquiredAt.toISOString()}, lease until ${holder.expiresAt.toISOString()}. ` +
            'Wait with --wait-lock SECONDS, or break it with `dsmigrate unlock` if that run is dead.',
          { holder: holder.owner },
        );
      }
      await sleep(Math.min(1000, Math.max(50, deadline - Date.now())));
    }
  }

  /** Throws LEASE_LOST unless this owner holds the lease; inside a lifecycle step's transaction, so the step and the check are one. */
  async assertHeld(tx: Transaction | Datastore): Promise<void> {
    const holder = await Lease.holder(tx, this.namespace);
    if (!holder || holder.owner !== this.owner) throw this.lostError(holder);
  }

  /**
   * `work` inside `tx` (or beside a plain read of the lease), its reads sent alongside the lease's (each
   * read is a round trip, tens of milliseconds in production); a lost lease is the error whatever `work`
   * did, and its writes, buffered in the transaction, are never committed then.
   */
  async whileHeld<T>(tx: Transaction | Datastore, work: () => Promise<T>): Promise<T> {
    const [held, result] = await Promise.allSettled([this.assertHeld(tx), work()]);
    if (held.status === 'rejected') throw held.reason;
    if (result.status === 'rejected') throw result.reason;
    return result.value;
  }

  /**
   * Whether this owner still holds the lease, from one lookup; renewed (a transaction) only once between a
   * quarter and three quarters of its time to live have passed, at a point drawn afresh by each call: the
   * many tasks of a Cloud Tasks run that check it at once then renew it one at a time rather than all
   * together, and the first renewal makes the others' checks find it fresh.
   */
  async keep(): Promise<'held' | 'lost'> {
    const holder = await Lease.holder(this.store, this.namespace);
    if (!holder || holder.owner !== this.owner) return 'lost';
    if (holder.expiresAt.getTime() - Date.now() > this.ttlMs * (0.25 + Math.random() * 0.5)) return 'held';
    return this.renew();
  }

  /**
   * Extends the lease if this owner still holds it, even if it lapsed meanwhile and nobody took it. A lease
   * another task of the same owner renewed a moment ago is left as it is: writing it again would only
   * contend with that task.
   */
  async renew(): Promise<'held' | 'lost'> {
    const expiresAt = await this.renewalOnce();
    if (expiresAt === undefined) return 'lost';
    // Only now that it is committed: a renewal that failed must leave the old expiry to judge by.
    this.expiresAt = expiresAt;
    return 'held';
  }

  /**
   * The renewal transaction, shared by every renewal of this lease that this store's process starts while
   * it is in flight: a worker's tasks find the lease due at the same moment, and their transactions, each
   * reading the lease and then writing it, held each other's locks and were aborted and retried together
   * (up to 64 commits of the lease a second on the Firestore-mode emulator, 64 shards' tasks on 4 workers).
   */
  private renewalOnce(): Promise<number | undefined> {
    const inFlight = renewalsInFlight(this.store);
    const name = `${this.namespace}\0${this.owner}`;
    let renewal = inFlight.get(name);
    if (!renewal) {
      renewal = this.store
        .transaction(async (tx) => {
          const holder = await Lease.holder(tx, this.namespace);
          if (!holder || holder.owner !== this.owner) return undefined;
          if (holder.expiresAt.getTime() - Date.now() > this.ttlMs * FRESH) return holder.expiresAt.getTime();
          return this.write(tx, holder.command, holder.acquiredAt);
        })
        .finally(() => inFlight.delete(name));
      inFlight.set(name, renewal);
    }
    return renewal;
  }

  /**
   * Renews the lease in the background (a process holding it for a local run). When it is found
   * broken or taken, or cannot be renewed before it expires, `signal` is aborted.
   */
  keepRenewed(): AbortSignal {
    this.stopRenewing();
    const chain: { timer?: NodeJS.Timeout } = {};
    this.renewal = chain;
    const period = Math.max(200, this.ttlMs / 3);
    const tick = async () => {
      const started = Date.now();
      await this.renewOrLose();
      // The next renewal is scheduled only once this one settled, so that a slow one never overlaps
      // the next; it starts a period after this one started, so that slowness does not thin the margin.
      if (this.renewal === chain) schedule(Math.max(0, period - (Date.now() - started)));
    };
    const schedule = (delayMs: number) => {
      chain.timer = setTimeout(() => void tick(), delayMs);
      // A finished CLI is never kept alive by the timer.
      chain.timer.unref();
    };
    schedule(period);
    return this.signal;
  }

  private async renewOrLose(): Promise<void> {
    try {
      if ((await this.renew()) === 'lost') this.lose(this.lostError(await Lease.holder(this.store, this.namespace).catch(() => undefined)));
    } catch (error) {
      // A transient failure: try again at the next tick, unless the lease may already have lapsed.
      if (Date.now() >= this.expiresAt) this.lose(new DsMigrateError('LEASE_LOST', `The migration lock could not be renewed before it expired (${errorMessage(error)}); stopping.`));
    }
  }

  private lose(error: DsMigrateError): void {
    this.stopRenewing();
    if (!this.lost.signal.aborted) this.lost.abort(error);
  }

  stopRenewing(): void {
    clearTimeout(this.renewal?.timer);
    this.renewal = undefined;
  }

  async release(): Promise<void> {
    this.stopRenewing();
    if (this.released) return;
    await this.store.transaction(async (tx) => {
      const holder = await Lease.holder(tx, this.namespace);
      if (holder?.owner === this.owner) tx.delete(this.key);
    });
    this.released = true;
  }

  private lostError(holder: LeaseHolder | undefined): DsMigrateError {
    return new DsMigrateError(
      'LEASE_LOST',
      `The migration lock was taken from this run (now held by ${holder?.owner ?? 'nobody'}: broken with \`dsmigrate unlock\`, or expired and taken); stopping.`,
      { holder: holder?.owner },
    );
  }

  /** Writes this owner's lease into `tx`; returns its expiry, for the caller to believe once `tx` committed. */
  private write(tx: Transaction, command: string, acquiredAt: Date): number {
    const expiresAt = Date.now() + this.ttlMs;
    tx.upsert(Entity.from(this.key, { owner: this.owner, command, acquiredAt, expiresAt: new Date(expiresAt) }));
    return expiresAt;
  }
}
