import { setTimeout as sleep } from 'node:timers/promises';
import { Entity, Key, type Datastore } from '../datastore';
import { DsMigrateError } from '../errors';
import { lockKey, MigrationLock } from '../migrations';

/**
 * The migration lock, held by a pipeline run rather than by a process: the same entity MigrationLock
 * uses (so a local `migrate`, `status` and `unlock` all see it), with `run:<id>` as its owner. Every
 * task that runs renews it; when no task has run for its time to live (workers gone, tasks dropped)
 * it lapses, and the next `migrate` may take over and resume.
 */

export function runOwner(runId: string): string {
  return `run:${runId}`;
}

export type LeaseState = 'held' | 'lost';

export class RunLease {
  private readonly key: Key;
  private readonly owner: string;

  constructor(
    private readonly store: Datastore,
    namespace: string,
    runId: string,
    private readonly ttlMs: number,
  ) {
    this.key = lockKey(namespace);
    this.owner = runOwner(runId);
  }

  /** Takes the lock for the run, waiting up to `waitMs` for another holder; LOCKED if it stays held. */
  async acquire(command: string, waitMs = 0): Promise<void> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const taken = await this.store.transaction(async (tx) => {
        const current = await tx.get(this.key);
        const holder = current?.toObject();
        if (holder && holder.owner !== this.owner && (holder.expiresAt as Date).getTime() > Date.now()) return false;
        tx.upsert(this.entity(command, new Date()));
        return true;
      });
      if (taken) return;
      if (Date.now() >= deadline) {
        const holder = await MigrationLock.holder(this.store, this.key.namespace);
        throw new DsMigrateError(
          'LOCKED',
          `Another run holds the migration lock: ${holder?.owner ?? 'unknown'} (${holder?.command ?? '?'}), lease until ${holder?.expiresAt.toISOString() ?? '?'}. ` +
            'Wait with --wait-lock SECONDS, or break it with `dsmigrate unlock` if that run is dead.',
          { holder: holder?.owner },
        );
      }
      await sleep(Math.min(1000, Math.max(50, deadline - Date.now())));
    }
  }

  /**
   * Whether the run still holds the lock, from one lookup; renewed (a transaction) only once a
   * quarter of its time to live has passed, so that a busy run does not write the lock on every task.
   */
  async keep(): Promise<LeaseState> {
    const holder = (await this.store.get(this.key))?.toObject();
    if (!holder || holder.owner !== this.owner) return 'lost';
    if ((holder.expiresAt as Date).getTime() - Date.now() > this.ttlMs * 0.75) return 'held';
    return this.renew();
  }

  /**
   * Extends the lease if the run still holds it, even if it lapsed meanwhile and nobody took it.
   * `lost` when it was broken (`dsmigrate unlock`) or taken by another run: this run must stop.
   */
  async renew(): Promise<LeaseState> {
    return this.store.transaction(async (tx) => {
      const current = await tx.get(this.key);
      const holder = current?.toObject();
      if (!holder || holder.owner !== this.owner) return 'lost';
      tx.upsert(this.entity(String(holder.command), holder.acquiredAt as Date));
      return 'held';
    });
  }

  async release(): Promise<void> {
    await this.store.transaction(async (tx) => {
      const current = await tx.get(this.key);
      if (current?.get('owner') === this.owner) tx.delete(this.key);
    });
  }

  private entity(command: string, acquiredAt: Date): Entity {
    return Entity.from(this.key, { owner: this.owner, command, acquiredAt, expiresAt: new Date(Date.now() + this.ttlMs) });
  }
}
