import { Entity, Key, type Datastore } from '../datastore';
import { decodeImage, IMAGE_KIND } from './before-images';

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
}

/**
 * Removes the before-images past their retention in these namespaces: one keys-only query per namespace on
 * `expiresAt` (a built-in single-property index), streamed, deleted in batches. Each operation that lost
 * images is marked pruned (markKey), so that its back-out is refused with the date rather than restoring
 * part of it; its next forward job marks its images kept again, as they are new then.
 */
export async function pruneBeforeImages(store: Datastore, namespaces: readonly string[], options: { now?: Date; dryRun?: boolean } = {}): Promise<PruneResult> {
  const now = options.now ?? new Date();
  let expired = 0;
  const operations = new Set<string>();
  for (const namespace of namespaces) {
    const marked = new Set<string>();
    const markPruned = async (ops: string[]) => {
      const found = await store.lookup(ops.map((op) => markKey(op, namespace)));
      await store.save(ops.map((op, i) => mark(op, namespace, dateOf(found[i], 'keptSince') ?? null, now)));
    };
    for await (const keys of store.keys({ kind: IMAGE_KIND, namespace, filters: [{ property: 'expiresAt', op: '<', value: now }] })) {
      expired += keys.length;
      for (const key of keys) operations.add(operationOf(key));
      if (options.dryRun) continue;
      const marks = [...new Set(keys.map(operationOf))].filter((op) => !marked.has(op));
      // The mark first: a prune killed midway leaves the back-out refused, never half possible.
      await markPruned(marks);
      for (const op of marks) marked.add(op);
      await store.delete(keys);
    }
  }
  return { expired, operations: [...operations].sort() };
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
