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
  const layout = await store.transaction(async (tx) => {
    await fence(tx);
    const entity = await tx.get(jobKey(job));
    const stored = entity && decodeLayout(entity);
    if (isLive(stored)) tx.upsert(encodeLayout({ ...stored, cleared: true }));
    return stored;
  });
  if (!layout) return;
  await Promise.all([clearManifests(store, job), store.delete(layout.shards.map((_, i) => shardKey(job, i)))]);
  await store.delete([jobKey(job)]);
}

/** Deletes every job of a migration (job ids start with `<migration id>#`; see src/control/keys.ts). */
export async function clearMigrationJobs(store: Datastore, namespace: string, migrationId: string, fence: Fence = noFence): Promise<void> {
  const from = Key.of(CONTROL_KINDS.job, `${migrationId}#`, { namespace });
  const before = Key.of(CONTROL_KINDS.job, `${migrationId}$`, { namespace });
  const jobs: JobRef[] = [];
  for await (const keys of store.keys({ kind: CONTROL_KINDS.job, namespace, from, before })) for (const key of keys) jobs.push({ namespace, id: key.name! });
  for (const job of jobs) await clearJobState(store, job, fence);
}
