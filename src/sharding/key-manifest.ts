import { gunzipSync, gzipSync } from 'node:zlib';
import { CONTROL_KINDS, decodeJson, decodeStored, shardKeysKey, type JobRef } from '../control';
import { Entity, Key, type Datastore, type KeyList } from '../datastore';
import type { JobLayout } from './job-layout';
import { keyFromJson, keyToJson, type KeyJson } from './key-json';
import type { KeyRange } from './ranges';

/**
 * The keys a shard held when the planner cut it from a key stream, kept for the shard's tasks.
 * The in-process executor hands those keys straight to the shard; a task in another process would
 * otherwise query the shard's range again, and on a backend where a query's cost grows with the
 * kind (the Firestore-mode emulator) forty shards mean forty such scans. With the manifest a slice
 * does a lookup instead, and processes exactly the keys the local executor would.
 *
 * Only an optimisation: a missing manifest, or one that does not match the stored layout (another layout
 * since, another range), is ignored and the slice streams its range as usual.
 */
/** Under Datastore's 1 MiB per entity, with room to spare. */
const MAX_MANIFEST_BYTES = 900 * 1024;

interface StoredManifest {
  range: { ns: string; s?: KeyJson; e?: KeyJson };
  keys: KeyJson[];
}

export interface CutShard {
  index: number;
  range: KeyRange;
  keys: KeyList;
}

export async function saveManifests(store: Datastore, layout: JobLayout, shards: readonly CutShard[]): Promise<void> {
  const entities: Entity[] = [];
  for (const shard of shards) {
    const stored: StoredManifest = {
      range: { ns: shard.range.namespace, s: shard.range.start && keyToJson(shard.range.start), e: shard.range.end && keyToJson(shard.range.end) },
      keys: Array.from(shard.keys, keyToJson),
    };
    const blob = gzipSync(JSON.stringify(stored));
    if (blob.length > MAX_MANIFEST_BYTES) continue;
    entities.push(Entity.from(shardKeysKey(layout.job, shard.index), { jobId: layout.job.id, layoutCreatedAt: layout.createdAt, keys: blob }, { excludeFromIndexes: ['keys'] }));
  }
  if (entities.length > 0) await store.save(entities);
}

/** The shard's keys, if a manifest exists for this very layout and range. */
export async function loadManifest(store: Datastore, layout: JobLayout, index: number): Promise<Key[] | undefined> {
  const entity = await store.get(shardKeysKey(layout.job, index));
  const shard = layout.shards[index];
  if (!entity || !shard) return undefined;
  const { layoutCreatedAt, keys } = decodeStored(entity, { jobId: 'string', layoutCreatedAt: 'date', keys: 'blob' });
  if (layoutCreatedAt.getTime() !== layout.createdAt.getTime()) return undefined;
  const stored = decodeJson<StoredManifest>(entity, 'keys', gunzipSync(keys).toString('utf8'), (m) => Array.isArray(m.keys) && typeof m.range === 'object');
  const same = (a: Key | undefined, b: KeyJson | undefined) => (a === undefined ? b === undefined : b !== undefined && a.equals(keyFromJson(b)));
  if (stored.range.ns !== shard.namespace || !same(shard.start, stored.range.s) || !same(shard.end, stored.range.e)) return undefined;
  return stored.keys.map(keyFromJson);
}

export async function clearManifests(store: Datastore, job: JobRef): Promise<void> {
  const keys: Key[] = [];
  for await (const batch of store.keys({ kind: CONTROL_KINDS.shardKeys, namespace: job.namespace, filters: [{ property: 'jobId', op: '=', value: job.id }] })) for (const key of batch) keys.push(key);
  if (keys.length > 0) await store.delete(keys);
}
