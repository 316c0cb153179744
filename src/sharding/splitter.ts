import { grpcCode, GrpcCode, Key, PackedKeys, type Datastore, type KeyList, type PropertyFilter } from '../datastore';
import { pushedDown } from './filters';
import { pickSplitPoints, rangesBetween, type KeyRange } from './ranges';

/**
 * Where a kind is split into shards. Three ways, by what the backend offers:
 * - `__scatter__` (production and the classic emulator): a random sample of keys, 32 per wanted
 *   shard, sorted, with evenly spaced split points. Cheap, and the default shard count follows the
 *   sample's size, i.e. the kind's size.
 * - no scatter rows (the Firestore-mode emulator, or a very small kind) and a shard count asked for:
 *   one keys-only pass keeping an evenly thinned sample, then the same split.
 * - no scatter rows and no count asked for: shards are cut page by page from the key stream itself
 *   (`cutFromStream`), and the keys read are handed to the shards, so this fallback reads each key once.
 */
export const OVERSAMPLING = 32;
/** Shards per namespace when the count comes from the kind's size. */
export const MAX_DEFAULT_SHARDS = 32;
/**
 * Keys per page when cutting from the stream: few queries (each costs a scan and sort of the whole kind
 * on the Firestore-mode emulator, and one started mid-run also sorts the versions written since) against
 * bounded memory. A page's keys are held packed (~40 bytes each: src/datastore/packed-keys.ts), but its
 * response is 107 bytes a key and gRPC holds it twice while it arrives, which sets the peak. The CLI's
 * peak RSS at a million entities: 267–298 MB with pages of 250,000 keys, 230–236 MB with 125,000 and
 * 213 MB with 100,000, each step costing a tenth or more in time there. At 100,000 a kind of 200,000
 * already reads a full page while half a page waits, so its peak is a million's (218 MB): flat.
 */
export const PAGE_KEYS = 100_000;
/** Target keys per shard when cutting from the stream. */
export const STREAM_SHARD_KEYS = 2_500;
const MAX_SHARDS_PER_PAGE = 20;
/** Fewer keys than this make no shard of their own: a shard's checkpoint and transactions cost the same however few it holds. */
const MIN_SHARD_KEYS = 500;

/**
 * How a key stream is cut: keys per page, and, where one process runs the shards, how many it runs at
 * once (`slots`): a page's shards are then as many as fill whole rounds of them.
 */
export interface StreamCut {
  pageKeys: number;
  slots?: number;
}

export interface SplitTarget {
  kind: string;
  namespace: string;
  filters: readonly PropertyFilter[];
}

const metadataAnswers = new WeakMap<Datastore, Promise<boolean>>();

/**
 * Whether the backend answers metadata queries (one cheap `__kind__` query per store). The backend that
 * does not, the Firestore-mode emulator, has no `__scatter__` rows either, and there a scatter query
 * would cost a scan of the kind to learn nothing.
 */
function answersMetadata(store: Datastore): Promise<boolean> {
  let answer = metadataAnswers.get(store);
  if (!answer) {
    answer = (async () => {
      try {
        for await (const keys of store.keys({ kind: '__kind__', limit: 1 })) void keys;
        return true;
      } catch (error) {
        if (grpcCode(error) === GrpcCode.INVALID_ARGUMENT || grpcCode(error) === GrpcCode.UNIMPLEMENTED) return false;
        metadataAnswers.delete(store); // a transient failure is no answer: ask again next time
        throw error;
      }
    })();
    metadataAnswers.set(store, answer);
  }
  return answer;
}

/** Datastore's random sample of a kind's keys, empty where the backend has none. */
export async function scatterSample(store: Datastore, target: SplitTarget, size: number): Promise<Key[]> {
  if (!(await answersMetadata(store))) return [];
  const sample: Key[] = [];
  try {
    for await (const keys of store.keys({ kind: target.kind, namespace: target.namespace, order: [{ property: '__scatter__' }], limit: size })) sample.push(...keys);
  } catch (error) {
    if (grpcCode(error) === GrpcCode.INVALID_ARGUMENT || grpcCode(error) === GrpcCode.UNIMPLEMENTED) return [];
    throw error;
  }
  return sample;
}

/** The shard count a scatter sample suggests: one shard per OVERSAMPLING sampled keys, within bounds. */
export function shardCountFromSample(sampleSize: number): number {
  return Math.min(MAX_DEFAULT_SHARDS, Math.max(1, Math.ceil(sampleSize / OVERSAMPLING)));
}

/**
 * Splits a namespace's range into `shardCount` shards (or a count from the kind's size), or returns
 * undefined when only the stream can tell: no scatter rows and no count asked for.
 */
export async function splitNamespace(store: Datastore, target: SplitTarget, shardCount?: number): Promise<KeyRange[] | undefined> {
  if (shardCount === 1) return [{ namespace: target.namespace }];
  const sample = await scatterSample(store, target, OVERSAMPLING * (shardCount ?? MAX_DEFAULT_SHARDS));
  if (sample.length > 0) return rangesBetween(target.namespace, pickSplitPoints(sample, shardCount ?? shardCountFromSample(sample.length)));
  if (shardCount === undefined) return undefined;
  return rangesBetween(target.namespace, pickSplitPoints(await thinnedSample(store, target, OVERSAMPLING * shardCount), shardCount));
}

/** Whether splitNamespace will leave a namespace to be cut from its key stream, whatever the kind holds: no count asked for, and no `__scatter__` rows on this backend. */
export async function cutsFromStream(store: Datastore, shardCount?: number): Promise<boolean> {
  return shardCount === undefined && !(await answersMetadata(store));
}

/** Every key once, keeping an evenly spaced sample of at most 2 × `size` keys (halved whenever full). */
async function thinnedSample(store: Datastore, target: SplitTarget, size: number): Promise<Key[]> {
  let sample: Key[] = [];
  let every = 1;
  let seen = 0;
  for await (const keys of keyPages(store, target)) {
    for (const key of keys) {
      if (seen++ % every === 0) sample.push(key);
      if (sample.length >= 2 * size) {
        sample = sample.filter((_, i) => i % 2 === 0);
        every *= 2;
      }
    }
  }
  return sample;
}

/** A page of the stream cut into shards, each with the keys it holds. */
export interface CutPage {
  shards: { range: KeyRange; keys: KeyList }[];
  /** The first key of the next page; undefined after the last page. */
  next?: Key;
}

/**
 * Cuts shards from the key stream, page by page, from `cursor` on (the first page's first shard is open
 * below, the last page's last shard open above). Each page is one query, limited to PAGE_KEYS + 1 keys:
 * the extra key bounds this page's last shard and starts the next page.
 */
export async function* cutFromStream(store: Datastore, target: SplitTarget, cursor?: Key, { pageKeys, slots }: StreamCut = { pageKeys: PAGE_KEYS }): AsyncGenerator<CutPage> {
  let start = cursor;
  for (;;) {
    const batches: PackedKeys[] = [];
    for await (const keys of store.packedKeys({ kind: target.kind, namespace: target.namespace, filters: pushedDown(target.filters), from: start, orderByKey: true, limit: pageKeys + 1 })) {
      batches.push(keys);
    }
    const page = PackedKeys.concat(batches);
    const next = page.at(pageKeys);
    yield { shards: cutPage(target.namespace, page, start, next, Math.min(page.length, pageKeys), slots), next };
    if (!next) return;
    start = next;
  }
}

/** Equal runs of the first `length` keys, as shards that together cover [start, end); `slots` as for StreamCut. */
export function cutPage(namespace: string, keys: KeyList, start: Key | undefined, end: Key | undefined, length = keys.length, slots = 1): CutPage['shards'] {
  const count = shardCountOf(length, slots);
  const shards: CutPage['shards'] = [];
  for (let i = 0; i < count; i++) {
    const from = Math.floor((i * length) / count);
    const to = Math.floor(((i + 1) * length) / count);
    shards.push({
      range: { namespace, start: i === 0 ? start : keys.at(from), end: i === count - 1 ? end : keys.at(to) },
      keys: keys.slice(from, to),
    });
  }
  return shards;
}

/**
 * Shards for `length` keys: about STREAM_SHARD_KEYS each, at most MAX_SHARDS_PER_PAGE, rounded to whole
 * rounds of `slots`. Twenty shards eight at a time ran their third round four at once, at half the rate
 * and for as long as a full round; sixteen run in two full rounds.
 */
function shardCountOf(length: number, slots: number): number {
  const natural = Math.max(1, Math.round(length / STREAM_SHARD_KEYS));
  const bySize = Math.max(1, Math.floor(length / MIN_SHARD_KEYS));
  if (slots <= 1) return Math.min(MAX_SHARDS_PER_PAGE, natural);
  const rounds = Math.max(1, Math.min(Math.ceil(natural / slots), Math.floor(MAX_SHARDS_PER_PAGE / slots)));
  return Math.min(rounds * slots, bySize);
}

/** The namespace's keys in pages of PAGE_KEYS (one query each), so memory stays bounded on any backend. */
export async function* keyPages(store: Datastore, target: SplitTarget): AsyncGenerator<Key[]> {
  let after: Key | undefined;
  for (;;) {
    let last: Key | undefined;
    let count = 0;
    for await (const keys of store.keys({ kind: target.kind, namespace: target.namespace, filters: pushedDown(target.filters), after, orderByKey: true, limit: PAGE_KEYS })) {
      count += keys.length;
      last = keys[keys.length - 1] ?? last;
      yield keys;
    }
    if (count < PAGE_KEYS || !last) return;
    after = last;
  }
}
