import { CONTROL_KINDS, jobKey, shardKey, type JobRef } from '../control';
import { Key, type Datastore } from '../datastore';
import { decodeShard, freshShard, type ShardState } from './checkpoint';
import { addCounts, mergeWarnings, zeroCounts, type JobCounts, type Warnings } from './counts';
import { decodeLayout, encodeLayout, isLive, type JobLayout } from './job-layout';
import { clearManifests } from './key-manifest';
import { noFence, type Fence } from './fence';

/** Every shard's state, fresh for shards that have not committed a batch yet. */
export async function loadShardStates(store: Datastore, layout: JobLayout): Promise<ShardState[]> {
  const found = await store.lookup(layout.shards.map((_, i) => shardKey(layout.job, i)));
  return layout.shards.map((range, i) => (found[i] ? decodeShard(found[i]!) : freshShard(layout.job, i, range)));
}

export function summarize(layout: JobLayout, states: readonly ShardState[]): JobCounts & { warnings: Warnings } {
  const counts = zeroCounts();
  const warnings: Warnings = {};
  for (const s of states) {
    addCounts(counts, s.counts);
    mergeWarnings(warnings, s.warnings);
  }
  const known = layout.pending.length === 0 && layout.shards.every((s) => s.expected !== undefined);
  return {
    shardsTotal: layout.shards.length,
    shardsDone: states.filter((s) => s.done).length,
    ...counts,
    estimatedTotal: known ? layout.shards.reduce((n, s) => n + (s.expected ?? 0), 0) : undefined,
    warnings,
  };
}

/**
 * Deletes a job's layout, checkpoints and key manifests. The layout is first marked cleared, in a transaction.
 * A late batch (a duplicate Cloud Task, a run that lost its lease) that finds no checkpoint reads the layout
 * after that: seen live, nothing had been deleted yet and the shard is really fresh; seen marked or gone,
 * it writes nothing (src/sharding/processor.ts). Without the mark it could take a deleted checkpoint for a
 * fresh shard. The layout is deleted last, so that a crash midway leaves it to find again. The mark is the
 * only write that needs `fence`: once a job is marked cleared no run writes to it again, so deleting
 * its state afterwards is harmless whoever holds the lease by then.
 */
export async function clearJobState(store: Datastore, job: JobRef, fence: Fence = noFence): Promise<void> {
  const layout = await markCleared(store, job, fence);
  if (layout) await deleteState(store, layout);
}

/**
 * Clears every job of a migration (job ids start with `<migration id>#`; see src/control/keys.ts), as
 * clearJobState does, all marked before any is deleted. `whileDeleting` runs alongside the deletes, which
 * need no lease: a run lets go of its lease then.
 */
export async function clearMigrationJobs(store: Datastore, namespace: string, migrationId: string, fence: Fence = noFence, whileDeleting?: () => Promise<void>): Promise<void> {
  const from = Key.of(CONTROL_KINDS.job, `${migrationId}#`, { namespace });
  const before = Key.of(CONTROL_KINDS.job, `${migrationId}$`, { namespace });
  const jobs: JobRef[] = [];
  for await (const keys of store.keys({ kind: CONTROL_KINDS.job, namespace, from, before })) for (const key of keys) jobs.push({ namespace, id: key.name! });
  const marked: JobLayout[] = [];
  for (const job of jobs) {
    const layout = await markCleared(store, job, fence);
    if (layout) marked.push(layout);
  }
  // Every one settled before an error is thrown: the caller may retry `whileDeleting` then, not alongside it.
  const settled = await Promise.allSettled([...marked.map((layout) => deleteState(store, layout)), whileDeleting?.()]);
  const failed = settled.find((s) => s.status === 'rejected');
  if (failed) throw failed.reason;
}

/** Marks the job's layout cleared, under `fence`; returns the layout, undefined when there is none. */
async function markCleared(store: Datastore, job: JobRef, fence: Fence): Promise<JobLayout | undefined> {
  return store.transaction(async (tx) => {
    // Read alongside the fence's own reads: one round trip.
    tx.prefetch([jobKey(job)]);
    await fence(tx);
    const entity = await tx.get(jobKey(job));
    const stored = entity && decodeLayout(entity);
    if (isLive(stored)) tx.upsert(encodeLayout({ ...stored, cleared: true }));
    return stored;
  });
}

/** A marked job's checkpoints and key manifests, then its layout. */
async function deleteState(store: Datastore, layout: JobLayout): Promise<void> {
  const { job } = layout;
  await Promise.all([clearManifests(store, job), store.delete(layout.shards.map((_, i) => shardKey(job, i)))]);
  await store.delete([jobKey(job)]);
}
