import { Entity, Key, type Datastore } from '../datastore';
import pLimit from 'p-limit';
import { decodeImage, IMAGE_KIND } from './before-images';
import { cutFromStream, splitNamespace } from './splitter';

/** What one operation's before-images hold in one namespace, for `dsmigrate undo status`. */
export interface UndoHolding {
  /** `<migration>#<operation index>`. */
  operation: string;
  namespace: string;
  /** Images not restored yet: what a back-out would restore. */
  kept: number;
  restored: number;
  bytes: number;
  /** When the last of the kept images expires (a back-out after the first one expired is refused). */
  until?: Date;
  /** The earliest expiry among the kept images. */
  firstExpiry?: Date;
}

/**
 * The mark of an operation's before-images in a namespace, just past them (no job over the images reads it):
 * since when its forward jobs keep them (`keptSince`), and whether `undo prune` removed some since
 * (`prunedAt`). A back-out refuses an operation whose marks say that images are missing.
 */
export function markKey(operation: string, namespace: string): Key {
  return Key.of(IMAGE_KIND, `${operation}|~`, { namespace });
}

function mark(operation: string, namespace: string, keptSince: Date | null, prunedAt: Date | null): Entity {
  return Entity.from(markKey(operation, namespace), { operation, keptSince, prunedAt }, { excludeFromIndexes: ['operation', 'keptSince', 'prunedAt'] });
}

const isMark = (key: Key) => (key.name ?? '').endsWith('|~');
const operationOf = (key: Key) => (key.name ?? '').slice(0, (key.name ?? '').lastIndexOf('|'));

/** Every operation's before-images in these namespaces, summed: one streamed query per namespace. */
export async function undoHoldings(store: Datastore, namespaces: readonly string[]): Promise<UndoHolding[]> {
  const holdings = new Map<string, UndoHolding>();
  for (const namespace of namespaces) {
    for await (const batch of store.queryBatches({ kind: IMAGE_KIND, namespace })) {
      for (const entity of batch) {
        if (isMark(entity.key)) continue;
        const image = decodeImage(entity);
        const id = `${namespace}\n${image.operation}`;
        const h = holdings.get(id) ?? { operation: image.operation, namespace, kept: 0, restored: 0, bytes: 0 };
        holdings.set(id, h);
        h.bytes += image.bytes;
        if (image.restoredAt) h.restored++;
        else {
          h.kept++;
          if (!h.until || image.expiresAt > h.until) h.until = image.expiresAt;
          if (!h.firstExpiry || image.expiresAt < h.firstExpiry) h.firstExpiry = image.expiresAt;
        }
      }
    }
  }
  return [...holdings.values()].sort((a, b) => a.operation.localeCompare(b.operation) || a.namespace.localeCompare(b.namespace));
}

export interface PruneResult {
  /** Images past their retention (removed, unless a dry run). */
  expired: number;
  /** The operations they belonged to. */
  operations: string[];
  /** Key ranges scanned, over the namespaces that had expired images. */
  shards: number;
}

export interface PruneOptions {
  now?: Date;
  /** Count what would be removed, remove nothing. */
  dryRun?: boolean;
  /** Ranges per namespace (else the splitter's choice from the kind's size). */
  shardCount?: number;
}

/** Ranges scanned at once: each is a keys-only stream plus lookups and deletes, so a few keep the store's RPCs busy. */
const PRUNE_CONCURRENCY = 4;
/** Keys per masked lookup and per delete: one commit's worth. */
const PRUNE_BATCH = 500;

/**
 * Removes the before-images past their retention in these namespaces, as a sharded scan of the
 * `_dsmigrate_undo` kind: the splitter (src/sharding/splitter.ts) cuts each namespace into key ranges, a few
 * run at once, and each streams its keys, reads only `expiresAt` of them (a property mask) and deletes the
 * expired ones in batches. Key ranges rather than the `expiresAt` index: a key range and an inequality on
 * `expiresAt` in one query would need a composite index (Datastore allows inequalities on one property only).
 * A namespace with nothing expired (one keys-only query on `expiresAt`, limit 1) is not scanned at all.
 *
 * No job layout or checkpoints: a prune selects by a condition it evaluates again each time, holds no lease
 * and writes nothing but deletes, so a prune killed midway is finished by the next one, which finds nothing
 * expired in the ranges already done (re-reading only their unexpired keys).
 *
 * Each operation that loses images is marked pruned (markKey) before any of them is deleted, so that its
 * back-out is refused with the date rather than restoring part of it; its next forward job marks its images
 * kept again, as they are new then.
 */
export async function pruneBeforeImages(store: Datastore, namespaces: readonly string[], options: PruneOptions = {}): Promise<PruneResult> {
  const now = options.now ?? new Date();
  const result: PruneResult = { expired: 0, operations: [], shards: 0 };
  const operations = new Set<string>();
  const limit = pLimit(PRUNE_CONCURRENCY);
  for (const namespace of namespaces) {
    if (!(await anyExpired(store, namespace, now))) continue;
    // One marking per operation and namespace, shared by the ranges: a range deletes only once it is written.
    const marking = new Map<string, Promise<void>>();
    const markPruned = (op: string): Promise<void> => {
      let done = marking.get(op);
      if (!done) {
        done = (async () => {
          const [found] = await store.lookup([markKey(op, namespace)]);
          await store.save([mark(op, namespace, dateOf(found, 'keptSince') ?? null, now)]);
        })();
        marking.set(op, done);
      }
      return done;
    };
    const prune = async (keys: readonly Key[]): Promise<void> => {
      const images = keys.filter((key) => !isMark(key));
      if (images.length === 0) return;
      const found = await store.lookup(images, undefined, ['expiresAt']);
      const expired = images.filter((_, i) => {
        const expiresAt = dateOf(found[i], 'expiresAt');
        return expiresAt !== undefined && expiresAt < now;
      });
      result.expired += expired.length;
      for (const key of expired) operations.add(operationOf(key));
      if (options.dryRun || expired.length === 0) return;
      await Promise.all([...new Set(expired.map(operationOf))].map(markPruned));
      await store.delete(expired);
    };
    const target = { kind: IMAGE_KIND, namespace, filters: [] };
    const ranges = await splitNamespace(store, target, options.shardCount);
    if (ranges) {
      result.shards += ranges.length;
      await allOf(
        ranges.map((range) =>
          limit(async () => {
            for await (const keys of store.keys({ kind: IMAGE_KIND, namespace, from: range.start, before: range.end })) {
              for (let i = 0; i < keys.length; i += PRUNE_BATCH) await prune(keys.slice(i, i + PRUNE_BATCH));
            }
          }),
        ),
      );
      continue;
    }
    // No scatter rows and no count asked for: ranges cut from the key stream, page by page, with their keys in hand.
    for await (const page of cutFromStream(store, target)) {
      result.shards += page.shards.length;
      await allOf(
        page.shards.map(({ keys }) =>
          limit(async () => {
            for (let i = 0; i < keys.length; i += PRUNE_BATCH) await prune([...keys.slice(i, i + PRUNE_BATCH)]);
          }),
        ),
      );
    }
  }
  result.operations = [...operations].sort();
  return result;
}

/** Waits for every range, then fails with the first failure: none is left running past the prune's end. */
async function allOf(ranges: readonly Promise<void>[]): Promise<void> {
  const failed = (await Promise.allSettled(ranges)).find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/** Whether any image in the namespace is past its retention: `expiresAt` has the built-in single-property index. */
async function anyExpired(store: Datastore, namespace: string, now: Date): Promise<boolean> {
  for await (const keys of store.keys({ kind: IMAGE_KIND, namespace, filters: [{ property: 'expiresAt', op: '<', value: now }], limit: 1 })) if (keys.length > 0) return true;
  return false;
}

const dateOf = (entity: Entity | undefined, name: string): Date | undefined => {
  const value = entity?.get(name);
  return value instanceof Date ? value : undefined;
};

/** What the marks say of an operation's images in these namespaces: kept in all of them, and the first prune that removed some. */
export async function imageMarks(store: Datastore, operation: string, namespaces: readonly string[]): Promise<{ kept: boolean; prunedAt?: Date }> {
  const marks = await store.lookup(namespaces.map((namespace) => markKey(operation, namespace)));
  const pruned = marks.map((m) => dateOf(m, 'prunedAt')).filter((d): d is Date => d !== undefined);
  return { kept: marks.every((m) => dateOf(m, 'keptSince') !== undefined), prunedAt: pruned.sort((a, b) => a.getTime() - b.getTime())[0] };
}

/** Notes that the operation's forward jobs keep images from now on, in these namespaces; a prune before now no longer matters, as its images are new. */
export async function markImagesKept(store: Datastore, operation: string, namespaces: readonly string[]): Promise<void> {
  const found = await store.lookup(namespaces.map((namespace) => markKey(operation, namespace)));
  const missing = namespaces.filter((_, i) => !dateOf(found[i], 'keptSince') || dateOf(found[i], 'prunedAt'));
  if (missing.length > 0) await store.save(missing.map((namespace) => mark(operation, namespace, new Date(), null)));
}

/** Forgets that the operation keeps images: a job of it that keeps none runs now. */
export async function forgetImagesKept(store: Datastore, operation: string, namespaces: readonly string[]): Promise<void> {
  await store.delete(namespaces.map((namespace) => markKey(operation, namespace)));
}
