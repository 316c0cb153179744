import { gunzipSync, gzipSync } from 'node:zlib';
import { Entity, Key, type Datastore } from '../datastore';
// Not re-exported by src/sharding: the plan's own key encoding, so manifests and plans read alike.
import { keyFromJson, keyToJson, type KeyJson } from '../sharding';
import type { KeyRange, RunPlan } from '../sharding';

/**
 * The keys a shard held when the planner cut it from a key stream, kept for the shard's tasks.
 * The in-process executor hands those keys straight to the shard; a task in another process would
 * otherwise query the shard's range again, and on a backend where a query's cost grows with the
 * kind (the Firestore-mode emulator) forty shards mean forty such scans. With the manifest a slice
 * does a lookup instead, and processes exactly the keys the local executor would.
 *
 * Only an optimisation: a missing manifest, or one that does not match the stored plan (another plan
 * since, another range), is ignored and the slice streams its range as usual.
 */
export const KEY_MANIFEST_KIND = '_dsmigrate_shard_keys';

/** Under Datastore's 1 MiB per entity, with room to spare. */
const MAX_MANIFEST_BYTES = 900 * 1024;

interface StoredManifest {
  range: { ns: string; s?: KeyJson; e?: KeyJson };
  keys: KeyJson[];
}

function manifestKey(runId: string, index: number): Key {
  return Key.of(KEY_MANIFEST_KIND, `${runId}::${index}`);
}

export interface CutShard {
  index: number;
  range: KeyRange;
  keys: readonly Key[];
}

export async function saveManifests(store: Datastore, plan: RunPlan, shards: readonly CutShard[]): Promise<void> {
  const entities: Entity[] = [];
  for (const shard of shards) {
    const stored: StoredManifest = {
      range: { ns: shard.range.namespace, s: shard.range.start && keyToJson(shard.range.start), e: shard.range.end && keyToJson(shard.range.end) },
      keys: shard.keys.map(keyToJson),
    };
    const blob = gzipSync(JSON.stringify(stored));
    if (blob.length > MAX_MANIFEST_BYTES) continue;
    entities.push(Entity.from(manifestKey(plan.runId, shard.index), { runId: plan.runId, planCreatedAt: plan.createdAt, keys: blob }, { excludeFromIndexes: ['keys'] }));
  }
  if (entities.length > 0) await store.save(entities);
}

/** The shard's keys, if a manifest exists for this very plan and range. */
export async function loadManifest(store: Datastore, plan: RunPlan, index: number): Promise<Key[] | undefined> {
  const entity = await store.get(manifestKey(plan.runId, index));
  const planned = plan.shards[index];
  const createdAt = entity?.get('planCreatedAt');
  const blob = entity?.get('keys');
  if (!planned || !(createdAt instanceof Date) || createdAt.getTime() !== plan.createdAt.getTime() || !Buffer.isBuffer(blob)) return undefined;
  const stored = JSON.parse(gunzipSync(blob).toString('utf8')) as StoredManifest;
  const same = (a: Key | undefined, b: KeyJson | undefined) => (a === undefined ? b === undefined : b !== undefined && a.equals(keyFromJson(b)));
  if (stored.range.ns !== planned.namespace || !same(planned.start, stored.range.s) || !same(planned.end, stored.range.e)) return undefined;
  return stored.keys.map(keyFromJson);
}

export async function clearManifests(store: Datastore, runId: string): Promise<void> {
  const keys: Key[] = [];
  for await (const batch of store.keys({ kind: KEY_MANIFEST_KIND, filters: [{ property: 'runId', op: '=', value: runId }] })) keys.push(...batch);
  if (keys.length > 0) await store.delete(keys);
}
