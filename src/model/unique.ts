import { createHash } from 'node:crypto';
import { Entity, GeoPoint, Key, type Transaction } from '../datastore';
import { DATA_SIDE_KINDS } from '../control';
import { DsMigrateError } from '../errors';

/**
 * The kind of the marker entities behind unique fields: one per (kind, field, value), a root entity in the
 * namespace of the entity that holds the value ("markers live beside their entities"), holding its key in `owner`.
 */
export const UNIQUE_MARKER_KIND = DATA_SIDE_KINDS.uniqueMarker;

/** A unique field's value as its marker sees it. */
export interface UniqueValue {
  field: string;
  /** The marker's key name: kind, field, the value's type and the value (hashed when long). */
  markerName: string;
  /** The value for messages. */
  display: string;
}

/** Values longer than this (in UTF-8 bytes) are hashed in the marker's name; Datastore allows 1500 bytes in all. */
const MAX_RAW_VALUE_BYTES = 256;

const TYPE_TAGS = { string: 's', integer: 'i', double: 'd', boolean: 'b', timestamp: 't', key: 'k', geoPoint: 'g' } as const;

/**
 * The unique value stored under `property` of `entity`, read from the stored encoding so that the number 1 and
 * the bigint 1n (both integers) share a marker while the integer 1, the double 1 and the string '1' do not.
 * Undefined when the property is missing, null, or of a type that is not unique (nothing to mark).
 */
export function uniqueValueOf(kind: string, field: string, entity: Entity, property: string | undefined): UniqueValue | undefined {
  if (property === undefined) return undefined;
  const type = entity.typeOf(property);
  if (type === undefined || !(type in TYPE_TAGS)) return undefined;
  const value = entity.get(property);
  let repr: string;
  let display: string | undefined;
  if (type === 'timestamp') {
    // The stored seconds and nanoseconds: a Date would round microseconds away and merge distinct values.
    const stamp = entity.raw(property)!.timestampValue!;
    repr = `${String(stamp.seconds ?? 0)}.${String(stamp.nanos ?? 0).padStart(9, '0')}`;
    display = (value as Date).toISOString();
  } else if (type === 'geoPoint') {
    repr = `${(value as GeoPoint).latitude},${(value as GeoPoint).longitude}`;
  } else if (type === 'double') {
    repr = Object.is(value, -0) ? '0' : String(value);
  } else {
    repr = value instanceof Key ? value.toString() : String(value);
  }
  const tag = TYPE_TAGS[type as keyof typeof TYPE_TAGS];
  const encoded = Buffer.byteLength(repr) > MAX_RAW_VALUE_BYTES ? `${tag}#${createHash('sha256').update(repr).digest('hex')}` : `${tag}:${repr}`;
  return { field, markerName: `${nameSegment(kind)}|${nameSegment(field)}|${encoded}`, display: display ?? repr };
}

/**
 * Escapes `|` (the separator) and a leading `_`: a key name that starts and ends with `__` is reserved, and a
 * value may end with `__`.
 */
function nameSegment(part: string): string {
  return encodeURIComponent(part).replace(/^_/, '%5F');
}

export function markerKey(entityKey: Key, value: UniqueValue): Key {
  return Key.of(UNIQUE_MARKER_KIND, value.markerName, { namespace: entityKey.namespace });
}

function markerEntity(kind: string, entityKey: Key, value: UniqueValue): Entity {
  return Entity.from(markerKey(entityKey, value), { kind, field: value.field, owner: entityKey });
}

function ownerOf(marker: Entity | undefined): Key | undefined {
  const owner = marker?.get('owner');
  return owner instanceof Key ? owner : undefined;
}

/** What the model tells the marker code: its kind, its unique fields, and how to read one from a stored entity. */
export interface UniqueFields {
  kind: string;
  fields: readonly string[];
  valueOf(entity: Entity, field: string): UniqueValue | undefined;
}

/**
 * Writes `entity` and keeps its markers in step, inside `tx`: claims a marker per unique value, drops the markers of
 * the values the stored entity held before, and refuses a value whose marker belongs to another entity that still
 * holds it. A marker whose owner no longer holds the value (deleted, or changed by a write that bypassed the model)
 * is stale and taken over, so that such writes cannot block a value forever. Reading the previous entity, the markers
 * and their owners in the same transaction makes concurrent saves of one value conflict, and all but one fail.
 */
export async function saveWithMarkers(tx: Transaction, unique: UniqueFields, entity: Entity): Promise<void> {
  const key = entity.key;
  const next = definedValues(unique, entity);
  const [stored, ...markers] = await lookupDistinct(tx, [key, ...next.map((v) => markerKey(key, v))]);
  const previous = stored ? definedValues(unique, stored) : [];
  const dropped = previous.filter((p) => !next.some((n) => n.markerName === p.markerName));
  const foreign = next.map((value, i) => ({ value, owner: ownerOf(markers[i]) })).filter((m) => m.owner && !m.owner.equals(key));
  const found = await lookupDistinct(tx, [...dropped.map((v) => markerKey(key, v)), ...foreign.map((m) => m.owner!)]);
  foreign.forEach(({ value, owner }, i) => {
    const holder = found[dropped.length + i];
    if (holder && unique.valueOf(holder, value.field)?.markerName === value.markerName) throw uniqueViolation(unique.kind, key, value, owner!);
  });
  dropped.forEach((value, i) => {
    if (ownerOf(found[i])?.equals(key)) tx.delete(markerKey(key, value));
  });
  next.forEach((value, i) => {
    if (!ownerOf(markers[i])?.equals(key)) tx.upsert(markerEntity(unique.kind, key, value));
  });
  tx.upsert(entity);
}

/** Deletes the entity at `key` and the markers it owns, inside `tx`. */
export async function deleteWithMarkers(tx: Transaction, unique: UniqueFields, key: Key): Promise<void> {
  const stored = await tx.get(key);
  const held = stored ? definedValues(unique, stored) : [];
  const markers = await lookupDistinct(
    tx,
    held.map((v) => markerKey(key, v)),
  );
  held.forEach((value, i) => {
    if (ownerOf(markers[i])?.equals(key)) tx.delete(markerKey(key, value));
  });
  tx.delete(key);
}

/** One entity's change, as a batch of an operation makes it: `after` undefined for a deletion, or for dropping its markers. */
export interface MarkerChange {
  unique: UniqueFields;
  key: Key;
  /** The entity as read in the transaction, if it existed. */
  before: Entity | undefined;
  after: Entity | undefined;
}

/**
 * Keeps the markers of a whole batch in step inside its transaction, in two lookups: every value an
 * entity holds after the change has a marker owned by it, and markers of values it no longer holds are
 * dropped. A value held by another entity (outside the batch, still holding it; or by two entities of
 * the batch) is a UNIQUE_VIOLATION, and the batch writes nothing. As in saveWithMarkers, a marker whose
 * owner no longer holds the value is stale and taken over.
 */
export async function keepMarkers(tx: Transaction, changes: readonly MarkerChange[]): Promise<void> {
  if (changes.length === 0) return;
  const afterByKey = new Map(changes.map((c) => [c.key.toString(), c.after]));
  const claims = changes.flatMap((c) => (c.after ? definedValues(c.unique, c.after).map((value) => ({ change: c, value })) : []));
  const drops = changes.flatMap((c) =>
    c.before
      ? definedValues(c.unique, c.before)
          .filter((p) => !claims.some((n) => n.change === c && n.value.markerName === p.markerName))
          .map((value) => ({ change: c, value }))
      : [],
  );
  const claimedBy = new Map<string, Key>();
  for (const { change, value } of claims) {
    const name = markerKey(change.key, value).toString();
    const other = claimedBy.get(name);
    if (other && !other.equals(change.key)) throw uniqueViolation(change.unique.kind, change.key, value, other);
    claimedBy.set(name, change.key);
  }
  const markerKeys = [...claims, ...drops].map(({ change, value }) => markerKey(change.key, value));
  const markers = await lookupDistinct(tx, markerKeys);
  const claimMarkers = markers.slice(0, claims.length);
  const dropMarkers = markers.slice(claims.length);
  // Owners of claimed markers that are not the claimant: do they still hold the value? Their state after this batch if it changes them.
  const foreign = claims.map(({ change, value }, i) => ({ change, value, owner: ownerOf(claimMarkers[i]) })).filter((f) => f.owner && !f.owner.equals(f.change.key));
  const outside = foreign.filter((f) => !afterByKey.has(f.owner!.toString()));
  const holders = await lookupDistinct(
    tx,
    outside.map((f) => f.owner!),
  );
  const holderOf = new Map(outside.map((f, i) => [f.owner!.toString(), holders[i]]));
  for (const { change, value, owner } of foreign) {
    const holder = afterByKey.has(owner!.toString()) ? afterByKey.get(owner!.toString()) : holderOf.get(owner!.toString());
    if (holder && change.unique.valueOf(holder, value.field)?.markerName === value.markerName) throw uniqueViolation(change.unique.kind, change.key, value, owner!);
  }
  drops.forEach(({ change, value }, i) => {
    const key = markerKey(change.key, value);
    if (ownerOf(dropMarkers[i])?.equals(change.key) && !claimedBy.has(key.toString())) tx.delete(key);
  });
  claims.forEach(({ change, value }, i) => {
    if (!ownerOf(claimMarkers[i])?.equals(change.key)) tx.upsert(markerEntity(change.unique.kind, change.key, value));
  });
}

/** A lookup that sends each key once (two foreign markers may share an owner), and nothing when there are none. */
async function lookupDistinct(tx: Transaction, keys: readonly Key[]): Promise<(Entity | undefined)[]> {
  if (keys.length === 0) return [];
  const distinct = new Map(keys.map((k) => [k.toString(), k]));
  const found = await tx.lookup([...distinct.values()]);
  const byKey = new Map([...distinct.keys()].map((k, i) => [k, found[i]]));
  return keys.map((k) => byKey.get(k.toString()));
}

function definedValues(unique: UniqueFields, entity: Entity): UniqueValue[] {
  return unique.fields.map((field) => unique.valueOf(entity, field)).filter((v): v is UniqueValue => v !== undefined);
}

function uniqueViolation(kind: string, key: Key, value: UniqueValue, holder: Key): DsMigrateError {
  return new DsMigrateError('UNIQUE_VIOLATION', `${kind}.${value.field} is unique: the value ${JSON.stringify(value.display)} is already held by ${holder}, so ${key} cannot take it.`, {
    kind,
    field: value.field,
    value: value.display,
    key: key.toString(),
    heldBy: holder.toString(),
  });
}
