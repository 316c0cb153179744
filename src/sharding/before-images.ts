import { DATA_SIDE_KINDS, decodeStored, type JobRef } from '../control';
import { decodeProperties, encodeEntity, encodeProperties, Entity, Key, MAX_ENTITY_BYTES, propertiesHash, type Datastore, type EncodedEntity, type EncodedValue, type PathElement } from '../datastore';
import { DsMigrateError } from '../errors';
import { storedBytes, storedKeySize } from './entity-size';
import type { KeyRange } from './ranges';

/**
 * Before-images: for an operation kept with `undo`, every entity a batch changes or deletes is written as it
 * was, in the same transaction as the change (src/sharding/processor.ts), to a root entity of its own beside
 * it (kind `_dsmigrate_undo`, in the scanned entity's namespace). Its key name is
 *
 *     <migration>#<operation index>|<scanned key, encoded>!<written key's namespace and key, encoded>
 *
 * where the encoding keeps Datastore's key order (kinds and names as hex of their UTF-8 bytes, ids as 19
 * digits, each part ended by '.'): the images of one operation are one key range, scanned with no filter and
 * no composite index, and a range of the scanned kind's keys (an operation's coverage,
 * src/migrations/coverage.ts) is exactly one range of image keys, both ways (imageRanges, scannedRanges).
 */
export const IMAGE_KIND = DATA_SIDE_KINDS.beforeImage;

/** How long an operation's before-images are kept. */
export interface UndoSpec {
  /** As given (`'14d'`), for messages. */
  retain: string;
  retainMs: number;
}

/** What an image takes besides its key, the operation's name, the entity it keeps (or a null's byte) and the hash, as storedBytes counts it: four names, a timestamp, the hash string's byte, and Datastore's 32. */
const IMAGE_FIXED_BYTES = 'operation after before expiresAt '.length + 8 + 1 + 32;

/** The hash an image keeps for an entity the batch deleted. */
export const ABSENT = 'absent';

/** One stored before-image. */
export interface BeforeImage {
  key: Key;
  /** `<migration>#<operation index>`. */
  operation: string;
  /** The entity the batch wrote or deleted. */
  target: Key;
  /** As it was before the batch; undefined when it did not exist (a copy created it). */
  before?: Entity;
  /** propertiesHash of what the batch left at `target`, or ABSENT: the overwrite guard compares the entity with it. */
  after: string;
  expiresAt: Date;
  restoredAt?: Date;
  /** The image's own size, for `status`. */
  bytes: number;
}

/** `<migration>#<operation index>` of a job (`<migration>#<operation index>.<seq>`). */
export function operationOfJob(job: JobRef): string {
  return job.id.slice(0, job.id.lastIndexOf('.'));
}

const prefix = (operation: string) => `${operation}|`;
/** Above every character of an encoded key (hex digits, '.', '/', '!', '"'): the end of an operation's images. */
const AFTER_ALL = '~';
/** Ends the scanned key in an image's name: below every character an encoded key may go on with. */
const WRITTEN = '!';
/** Just above WRITTEN: the images of a scanned key are below `<its name>"`, its descendants' above. */
const PAST = '"';

/** In the scanned entity's namespace, where the operation's job looks for it; the written key may be in another (a copy to a namespace). */
export function imageKey(operation: string, scanned: Key, written: Key): Key {
  const path = encodePath(scanned.path);
  const name = `${prefix(operation)}${path}${WRITTEN}${hexOf(written.namespace)}.${written === scanned ? path : encodePath(written.path)}`;
  if (Buffer.byteLength(name) > 1500) {
    throw new DsMigrateError('OPERATION_FAILED', `The before-image of ${written} needs a key name over 1,500 bytes (its key is too long to keep); turn undo off for operation ${operation}.`, {
      key: written.toString(),
      operation,
    });
  }
  return Key.of(IMAGE_KIND, name, { namespace: scanned.namespace });
}

const hex = (text: string) => Buffer.from(text, 'utf8').toString('hex');
/** Kinds and namespaces repeat on every image of a batch: encoded once. */
const hexes = new Map<string, string>();
function hexOf(text: string): string {
  let encoded = hexes.get(text);
  if (encoded === undefined) {
    encoded = hex(text);
    if (hexes.size < 1000) hexes.set(text, encoded);
  }
  return encoded;
}

function encodePath(path: readonly PathElement[]): string {
  let text = '';
  for (const e of path) text += `${hexOf(e.kind)}.${e.id !== undefined ? `0${e.id.padStart(19, '0')}` : e.name !== undefined ? `1${hex(e.name)}.` : '/'}`;
  return text;
}

function decodePath(text: string): PathElement[] {
  const path: PathElement[] = [];
  let i = 0;
  const until = (stop: string) => {
    const end = text.indexOf(stop, i);
    const part = Buffer.from(text.slice(i, end), 'hex').toString('utf8');
    i = end + 1;
    return part;
  };
  while (i < text.length) {
    const kind = until('.');
    const tag = text[i++];
    if (tag === '0') {
      path.push({ kind, id: String(BigInt(text.slice(i, i + 19))) });
      i += 19;
    } else if (tag === '1') path.push({ kind, name: until('.') });
    else path.push({ kind });
  }
  return path;
}

/**
 * The image ranges of an operation that hold the images of `ranges` of its scanned keys (the whole
 * operation, per namespace, when undefined): one range each, for a job that restores exactly them.
 */
export function imageRanges(operation: string, ranges: readonly KeyRange[] | undefined, namespaces: readonly string[]): KeyRange[] {
  const at = (namespace: string, name: string) => Key.of(IMAGE_KIND, name, { namespace });
  const p = prefix(operation);
  if (!ranges) return namespaces.map((namespace) => ({ namespace, start: at(namespace, p), end: at(namespace, p + AFTER_ALL) }));
  return ranges.map(({ namespace, start, end, startExclusive, endInclusive }) => ({
    namespace,
    start: at(namespace, start ? p + encodePath(start.path) + (startExclusive ? PAST : '') : p),
    end: at(namespace, end ? p + encodePath(end.path) + (endInclusive ? PAST : '') : p + AFTER_ALL),
  }));
}

/**
 * The scanned keys' ranges that image ranges (as imageRanges made them, or ending at an image) stand for:
 * what a restoring job undid, in its operation's coverage. Ranges of other keys are returned as they are.
 */
export function scannedRanges(ranges: readonly KeyRange[]): KeyRange[] {
  return ranges.map((range) => {
    if (range.start?.kind !== IMAGE_KIND && range.end?.kind !== IMAGE_KIND) return range;
    const out: KeyRange = { namespace: range.namespace };
    const start = range.start && split(range.start);
    if (start?.scanned) {
      out.start = start.scanned;
      if (start.past || range.startExclusive) out.startExclusive = true;
    }
    const end = range.end && split(range.end);
    if (end?.scanned) {
      out.end = end.scanned;
      if (end.past || end.image || range.endInclusive) out.endInclusive = true;
    }
    return out;
  });
}

/** An image range's bound: the scanned key it names, if any, and whether it is just past that key's images, or one of them. */
function split(bound: Key): { scanned?: Key; past: boolean; image: boolean } {
  const name = bound.leaf.name ?? '';
  const rest = name.slice(name.lastIndexOf('|') + 1);
  if (rest === '' || rest === AFTER_ALL) return { past: false, image: false };
  const cut = rest.search(/[!"]/);
  const scanned = new Key(decodePath(cut < 0 ? rest : rest.slice(0, cut)), bound.namespace);
  return { scanned, past: cut >= 0 && rest[cut] === PAST, image: cut >= 0 && rest[cut] === WRITTEN };
}

/** The key an image restores, from the image's key name. */
export function writtenKeyOf(image: Key): Key {
  const name = image.leaf.name ?? '';
  const rest = name.slice(name.lastIndexOf('|') + 1);
  const written = rest.slice(rest.indexOf(WRITTEN) + 1);
  const dot = written.indexOf('.');
  return new Key(decodePath(written.slice(dot + 1)), Buffer.from(written.slice(0, dot), 'hex').toString('utf8'));
}

/** What a batch changed, for its images: each written or deleted key, the scanned key that wrote it, and what it was. */
export interface ImageRequest {
  operation: string;
  undo: UndoSpec;
  store: Pick<Datastore, 'projectId' | 'databaseId'>;
  writes: readonly { scanned: Key; written: Key; after?: Entity; before?: Entity }[];
  now: Date;
}

/**
 * The images of one batch's writes, encoded here (src/datastore/encoded-entity.ts), as a batch writes one
 * beside every change; a write to an entity that was not there and is not there after changes nothing,
 * and has none. `bytes` is each image's size as Datastore counts it.
 */
export function imagesOf({ operation, undo, store, writes, now }: ImageRequest): { image: EncodedEntity; bytes: number }[] {
  const images: { image: EncodedEntity; bytes: number }[] = [];
  // The same on every image of the batch.
  const operationValue: EncodedValue = { string: operation };
  const expiresAt: EncodedValue = { timestamp: new Date(now.getTime() + undo.retainMs) };
  const fixedBytes = IMAGE_FIXED_BYTES + Buffer.byteLength(operation) + 1;
  for (const { scanned, written, after, before } of writes) {
    if (!before && !after) continue;
    const kept = before ? encodeProperties(before, store.projectId, store.databaseId) : null;
    const hash = after ? propertiesHash(after) : ABSENT;
    const key = imageKey(operation, scanned, written);
    const bytes = storedKeySize(key) + fixedBytes + (kept?.length ?? 1) + hash.length;
    if (bytes > MAX_ENTITY_BYTES) {
      throw new DsMigrateError(
        'OPERATION_FAILED',
        `${written} is too large to keep its before-image beside its change (${bytes.toLocaleString('en-US')} bytes, over Datastore's ${MAX_ENTITY_BYTES.toLocaleString('en-US')} per entity): ` +
          `turn undo off for operation ${operation} (remove its {undo} option), or keep a copy of the kind first.`,
        { key: written.toString(), operation },
      );
    }
    // As few properties as it needs, each paid for on every change: the target is in the key, and a `before` of null says it did not exist.
    const image = encodeEntity(
      key,
      [
        { name: 'operation', value: operationValue, indexed: true },
        { name: 'before', value: kept ? { blob: kept } : { null: true }, indexed: false },
        { name: 'after', value: { string: hash }, indexed: false },
        { name: 'expiresAt', value: expiresAt, indexed: true },
      ],
      store.projectId,
      store.databaseId,
    );
    images.push({ image, bytes });
  }
  return images;
}

export function decodeImage(entity: Entity): BeforeImage {
  const v = decodeStored(entity, { operation: 'string', before: 'blob?', after: 'string', expiresAt: 'date', restoredAt: 'date?' });
  const target = writtenKeyOf(entity.key);
  return {
    key: entity.key,
    operation: v.operation,
    target,
    before: v.before ? new Entity(target, decodeProperties(v.before)) : undefined,
    after: v.after,
    expiresAt: v.expiresAt,
    restoredAt: v.restoredAt,
    bytes: storedBytes(entity),
  };
}

/** The image marked restored: a second restore of it (a redelivered batch) then changes nothing. */
export function restoredImage(image: Entity, at: Date): Entity {
  return image.copy().set('restoredAt', at, { indexed: false });
}

/** What batchImages needs of a batch (src/sharding/apply.ts AppliedBatch has it). */
export interface BatchWrites {
  puts: readonly Entity[];
  deletes: readonly Key[];
  /** The scanned key that wrote each written key, by key string. */
  sources: ReadonlyMap<string, Key>;
  /** Scanned entities as they were before the operation changed them in place, by key string. */
  originals: ReadonlyMap<string, Entity>;
}

/** The before-images of a batch's writes, from the entities as its transaction read them (before the operation changed them). */
export function batchImages(
  store: Pick<Datastore, 'projectId' | 'databaseId'>,
  undo: UndoSpec,
  operation: string,
  applied: BatchWrites,
  found: ReadonlyMap<string, Entity>,
): ReturnType<typeof imagesOf> {
  const writes: ImageRequest['writes'][number][] = [];
  const add = (written: Key, after: Entity | undefined) => {
    const id = written.toString();
    writes.push({ written, after, scanned: applied.sources.get(id) ?? written, before: applied.originals.get(id) ?? found.get(id) });
  };
  for (const entity of applied.puts) add(entity.key, entity);
  for (const key of applied.deletes) add(key, undefined);
  return imagesOf({ operation, undo, store, writes, now: new Date() });
}
