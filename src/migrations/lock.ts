import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { Entity, Key, type Datastore } from '../datastore';
import { DsMigrateError } from '../errors';

export const LOCK_KIND = '_dsmigrate_lock';

/** The one lock entity of a control namespace, whether a process or a Cloud Tasks run holds it. */
export function lockKey(namespace = ''): Key {
  return Key.of(LOCK_KIND, 'migrate', { namespace });
}

export interface LockHolder {
  owner: string;
  command: string;
  acquiredAt: Date;
  expiresAt: Date;
}

export interface LockOptions {
  namespace?: string;
  /** How long a lease lasts without renewal; a holder that dies frees the lock after this. */
  ttlMs?: number;
  /** Wait this long for a held lock before giving up (0: fail at once). */
  waitMs?: number;
  command?: string;
}

/**
 * A lease in Datastore: one entity with an owner and an expiry, taken and renewed in transactions,
 * so two deploys cannot both run migrations and a crashed run frees the lock when its lease runs out.
 */
export class MigrationLock {
  readonly owner = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  private readonly key: Key;
  private readonly ttlMs: number;
  private renewal?: NodeJS.Timeout;
  private lost?: DsMigrateError;

  constructor(
    private readonly store: Datastore,
    private readonly options: LockOptions = {},
  ) {
    this.key = lockKey(options.namespace);
    this.ttlMs = options.ttlMs ?? 60_000;
  }

  static async holder(store: Datastore, namespace = ''): Promise<LockHolder | undefined> {
    const entity = await store.get(lockKey(namespace));
    return entity && toHolder(entity);
  }

  /** Breaks the lock whoever holds it (`dsmigrate unlock`). Returns the holder it removed. */
  static async breakLock(store: Datastore, namespace = ''): Promise<LockHolder | undefined> {
    const holder = await MigrationLock.holder(store, namespace);
    await store.delete([lockKey(namespace)]);
    return holder;
  }

  async acquire(): Promise<void> {
    const deadline = Date.now() + (this.options.waitMs ?? 0);
    for (;;) {
      const holder = await this.tryTake();
      if (!holder) break;
      if (Date.now() >= deadline) {
        throw new DsMigrateError(
          'LOCKED',
          `Another run holds the migration lock: ${holder.owner} (${holder.command}), since ${holder.acquiredAt.toISOString()}, lease until ${holder.expiresAt.toISOString()}. ` +
            'Wait with --wait-lock SECONDS, or break it with `dsmigrate unlock` if that run is dead.',
          { holder: holder.owner },
        );
      }
      await sleep(Math.min(1000, Math.max(50, deadline - Date.now())));
    }
    // Renew well before expiry; unref so a finished CLI is never kept alive by the timer.
    this.renewal = setInterval(() => void this.renew(), Math.max(200, this.ttlMs / 3));
    this.renewal.unref();
  }

  /** Takes the lease if free or expired; returns the live holder otherwise. */
  private async tryTake(): Promise<LockHolder | undefined> {
    return this.store.transaction(async (tx) => {
      const current = await tx.get(this.key);
      const holder = current && toHolder(current);
      if (holder && holder.owner !== this.owner && holder.expiresAt.getTime() > Date.now()) return holder;
      tx.upsert(this.entity(holder?.owner === this.owner ? holder.acquiredAt : new Date()));
      return undefined;
    });
  }

  private entity(acquiredAt: Date): Entity {
    return Entity.from(this.key, { owner: this.owner, command: this.options.command ?? 'migrate', acquiredAt, expiresAt: new Date(Date.now() + this.ttlMs) });
  }

  private async renew(): Promise<void> {
    try {
      await this.store.transaction(async (tx) => {
        const current = await tx.get(this.key);
        const holder = current && toHolder(current);
        if (!holder || holder.owner !== this.owner) {
          throw new DsMigrateError('LOCKED', `The migration lock was taken from this run (now held by ${holder?.owner ?? 'nobody'}); stopping.`);
        }
        tx.upsert(this.entity(holder.acquiredAt));
      });
    } catch (error) {
      if (error instanceof DsMigrateError && error.code === 'LOCKED') {
        this.lost = error;
        this.stopRenewal();
      }
    }
  }

  /** Throws if the lease was lost (broken or expired and taken); the runner checks between steps. */
  check(): void {
    if (this.lost) throw this.lost;
  }

  private stopRenewal(): void {
    if (this.renewal) clearInterval(this.renewal);
    this.renewal = undefined;
  }

  async release(): Promise<void> {
    this.stopRenewal();
    await this.store.transaction(async (tx) => {
      const current = await tx.get(this.key);
      if (current && toHolder(current).owner === this.owner) tx.delete(this.key);
    });
  }
}

function toHolder(entity: Entity): LockHolder {
  const v = entity.toObject();
  return { owner: String(v.owner), command: String(v.command), acquiredAt: v.acquiredAt as Date, expiresAt: v.expiresAt as Date };
}
