import { shardKey, type JobRef } from '../control';
import type { Datastore } from '../datastore';
import { decodeShard, encodeShard, freshShard } from './checkpoint';
import { loadLayout } from './layouts';
import { loadShardStates } from './progress';
import type { KeyRange } from './ranges';
import { noFence, type Fence } from './fence';

/**
 * Closes a job and returns the ranges its batches committed. Each shard is closed in a transaction
 * that reads its checkpoint, so the answer is final: a batch still in flight (a run that lost its
 * lease, a late Cloud Task) reads the closed checkpoint in its own transaction and commits nothing.
 * Safe to repeat: a closed shard reads the same. `fence` runs first in each transaction: the caller's
 * lease check, so that a run that lost its lease closes nothing of the holder's.
 */
export async function closeJob(store: Datastore, job: JobRef, fence: Fence = noFence): Promise<KeyRange[]> {
  const layout = await loadLayout(store, job);
  if (!layout) return [];
  const committed: KeyRange[] = [];
  for (const [index, range] of layout.shards.entries()) {
    const state = await store.transaction(async (tx) => {
      await fence(tx);
      const entity = await tx.get(shardKey(job, index));
      const current = entity ? decodeShard(entity) : freshShard(job, index, range);
      if (!current.closed) tx.upsert(encodeShard({ ...current, closed: true }));
      return current;
    });
    if (state.done) committed.push({ ...range });
    else if (state.lastKey) committed.push({ namespace: range.namespace, start: range.start, startExclusive: range.startExclusive, end: state.lastKey, endInclusive: true });
  }
  return committed;
}

/**
 * Whether any batch of the job changed or deleted an entity, as its checkpoints count: a job that
 * committed no change (its first batch failed, or it found nothing to do) has nothing to undo.
 */
export async function jobChangedData(store: Datastore, job: JobRef): Promise<boolean> {
  const layout = await loadLayout(store, job);
  if (!layout) return false;
  return (await loadShardStates(store, layout)).some((s) => s.counts.changed + s.counts.deleted > 0);
}
