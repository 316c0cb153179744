import { isDeepStrictEqual } from 'node:util';
import type { entity as OfficialEntityModule } from '@google-cloud/datastore/build/src/entity';
import { DsMigrateError } from '../errors';
import { Entity } from './entity';
import { Key, type PathElement } from './keys';
import { decodeValue, Double, encodeValue, GeoPoint, valueTypeOf, withIndexing, type Value, type ValueProto } from './values';

let officialHelpers: typeof OfficialEntityModule | undefined;

/** The official client's index-exclusion rules, loaded on first use: every CLI start would pay for them otherwise. */
function official(): typeof OfficialEntityModule {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- a lazy load, typed by the import above
  officialHelpers ??= (require('@google-cloud/datastore/build/src/entity') as { entity: typeof OfficialEntityModule }).entity;
  return officialHelpers;
}

// The types below describe @google-cloud/datastore's objects by their shape rather than import its classes,
// so that an app that type-checks its libraries (skipLibCheck: false) is not made to check that package too.

/** An integer id as @google-cloud/datastore holds it: a string (as it reads ids), a number, or its Int (`{value}`). */
export type OfficialId = string | number | bigint | { readonly value: string | number };

/** @google-cloud/datastore's Key (`datastore.key(...)`, `entity[datastore.KEY]`), or the same as plain JSON. */
export interface OfficialKey {
  readonly kind: string;
  readonly id?: OfficialId;
  readonly name?: string;
  readonly namespace?: string;
  readonly parent?: OfficialKey;
  readonly path: readonly unknown[];
}

/**
 * What the conversions to @google-cloud/datastore use of it: your app's `Datastore` instance. Its save and get
 * recognise keys and typed values by the classes of its own copy of the package, so the conversion makes them
 * with it rather than with the copy datastore-migrate depends on.
 */
export interface OfficialClient<K, I> {
  key(options: { namespace?: string; path: (string | I)[] }): K;
  int(value: string): I;
  double(value: number): unknown;
  geoPoint(coordinates: { latitude: number; longitude: number }): unknown;
}

/** An entity in the shape @google-cloud/datastore's save takes. */
export interface OfficialSaveEntity<K = OfficialKey> {
  key: K;
  data: Readonly<Record<string, unknown>> | readonly { name: string; value: unknown; excludeFromIndexes?: boolean }[];
  excludeFromIndexes?: readonly string[];
  excludeLargeProperties?: boolean;
}

const INTEGER = /^-?\d+$/;

function refuse(conversion: string, message: string, key?: string): DsMigrateError {
  return new DsMigrateError('BAD_INPUT', `${conversion}: ${message}`, key === undefined ? {} : { key });
}

/** Whether a value has the shape of @google-cloud/datastore's Key (a kind and a path), and is not already a Key. */
function isOfficialKey(value: unknown): value is OfficialKey {
  return typeof value === 'object' && value !== null && !(value instanceof Key) && typeof (value as OfficialKey).kind === 'string' && Array.isArray((value as OfficialKey).path);
}

/** The key as its path reads, for messages: `Order:100/Line:"a"`. */
function officialPath(key: OfficialKey): string {
  const elements: string[] = [];
  for (let at: OfficialKey | undefined = key; at; at = at.parent) {
    const id = typeof at.id === 'object' && at.id !== null ? at.id.value : at.id;
    elements.unshift(`${at.kind}:${at.name != null ? JSON.stringify(at.name) : id != null ? String(id) : '?'}`);
  }
  return key.namespace ? `[${key.namespace}]${elements.join('/')}` : elements.join('/');
}

/**
 * The Key of a @google-cloud/datastore key: ids are kept exactly (its ids are strings, or Int objects, past 2^53),
 * names stay names, and the ancestors and namespace come along. A number id past 2^53 has already lost digits
 * and is refused.
 */
export function fromOfficialKey(key: OfficialKey): Key {
  if (!isOfficialKey(key)) throw refuse('fromOfficialKey', `${describe(key)} is not a @google-cloud/datastore key ({kind, path, id?, name?, namespace?, parent?}).`);
  try {
    const path: PathElement[] = [];
    for (let at: OfficialKey | undefined = key; at; at = at.parent) path.unshift(officialElement(at));
    // The leaf's namespace is the key's: @google-cloud/datastore sends only that one.
    return new Key(path, key.namespace ?? '');
  } catch (error) {
    if (!(error instanceof DsMigrateError)) throw error;
    throw refuse('fromOfficialKey', `${officialPath(key)} cannot be converted: ${error.message}`);
  }
}

function officialElement(element: OfficialKey): PathElement {
  const { kind, name, id } = element;
  if (name != null && id != null) throw new DsMigrateError('BAD_INPUT', `${kind} has both an id and a name.`);
  if (name != null && typeof name !== 'string') throw new DsMigrateError('BAD_INPUT', `${kind}'s name ${String(name)} is not a string.`);
  // Key.of checks what a name and an id may be, so that both clients' keys are held to one rule.
  if (name != null) return Key.of(kind, name).leaf;
  if (id != null) return Key.of(kind, officialId(id)).leaf;
  return { kind };
}

function officialId(id: OfficialId): bigint {
  const value = typeof id === 'object' ? id.value : id;
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) {
      throw new DsMigrateError(
        'BAD_INPUT',
        `id ${value} is a number beyond 2^53 (or not whole) and may have lost digits: make the key with datastore.int('…'), or keep the string id the client reads.`,
      );
    }
    return BigInt(value);
  }
  if (typeof value === 'string' && INTEGER.test(value)) return BigInt(value);
  throw new DsMigrateError('BAD_INPUT', `id ${JSON.stringify(value)} is not an integer.`);
}

/** A Key, or the Key of a @google-cloud/datastore key: for calls that take a key of either client. */
export function asKey(key: Key | OfficialKey): Key {
  return key instanceof Key ? key : fromOfficialKey(key);
}

/**
 * The key as `client` (your app's @google-cloud/datastore `Datastore`) makes it: ids go in as its Int, so that
 * they keep every digit and are never taken for names.
 */
export function toOfficialKey<K, I>(key: Key, client: OfficialClient<K, I>): K {
  const path: (string | I)[] = [];
  for (const element of key.path) {
    path.push(element.kind);
    if (element.id !== undefined) path.push(client.int(element.id));
    else if (element.name !== undefined) path.push(element.name);
  }
  // As `datastore.key(...)` makes it: no namespace for the default one.
  return client.key(key.namespace ? { namespace: key.namespace, path } : { path });
}

/**
 * The Entity of a @google-cloud/datastore entity: one it read (its key under `datastore.KEY`), or one in the shape
 * its save takes (`{key, data, excludeFromIndexes?, excludeLargeProperties?}`, data an object or a list of
 * `{name, value, excludeFromIndexes?}`). Values are stored as that client would store them, with index exclusion
 * applied by its own rules; its Int, Double, GeoPoint and Key values keep their types. The entity comes out
 * changed, to be saved.
 */
export function fromOfficialEntity(entity: OfficialSaveEntity | Readonly<Record<string, unknown>>): Entity {
  const saved = saveShape(entity);
  const key = saved.key instanceof Key ? saved.key : fromOfficialKey(saved.key as OfficialKey);
  const excluded = [...(saved.excludeFromIndexes ?? [])];
  const properties: Record<string, ValueProto> = {};
  const encode = (name: string, value: unknown): ValueProto => {
    if (!name) throw refuse('fromOfficialEntity', `${key} has a property with an empty name.`, key.toString());
    return encodeValue(officialValue(value, name, key), { projectId: '' }, name);
  };
  if (isEntryList(saved.data)) {
    for (const entry of saved.data) {
      if (saved.excludeLargeProperties) official().findLargeProperties_(entry.value, entry.name, excluded);
      const proto = encode(entry.name, entry.value);
      properties[entry.name] = typeof entry.excludeFromIndexes === 'boolean' ? withIndexing(proto, !entry.excludeFromIndexes) : proto;
    }
  } else {
    if (saved.excludeLargeProperties) official().findLargeProperties_(saved.data, '', excluded);
    for (const [name, value] of Object.entries(saved.data)) properties[name] = encode(name, value);
  }
  official().addExcludeFromIndexes(excluded, { properties });
  const out = new Entity(key);
  for (const [name, proto] of Object.entries(properties)) out.setRaw(name, proto);
  return out;
}

function isEntryList(data: OfficialSaveEntity['data']): data is readonly { name: string; value: unknown; excludeFromIndexes?: boolean }[] {
  return Array.isArray(data);
}

function saveShape(entity: object): OfficialSaveEntity<unknown> {
  // The client's KEY symbol belongs to its copy of the package: it is found by its description.
  const symbol = Object.getOwnPropertySymbols(entity).find((s) => s.description === 'KEY');
  if (symbol) return { key: (entity as Record<symbol, unknown>)[symbol], data: entity as Record<string, unknown> };
  if ('key' in entity && 'data' in entity && typeof entity.data === 'object' && entity.data !== null) return entity as OfficialSaveEntity<unknown>;
  throw refuse('fromOfficialEntity', `${describe(entity)} is neither an entity read by @google-cloud/datastore (its key under datastore.KEY) nor one shaped for its save ({key, data}).`);
}

/** A value as @google-cloud/datastore would store it, in this package's terms. */
function officialValue(value: unknown, where: string, key: Key): Value {
  if (value === null || typeof value === 'boolean' || typeof value === 'string' || typeof value === 'bigint') return value;
  if (typeof value === 'number') {
    if (Number.isInteger(value) && !Number.isSafeInteger(value)) {
      throw refuse('fromOfficialEntity', `${key} ${where} is ${value}, beyond 2^53, so it may have lost digits: read it with {wrapNumbers: true}, or write datastore.int('…').`, key.toString());
    }
    return value;
  }
  if (typeof value !== 'object')
    throw refuse('fromOfficialEntity', `${key} ${where} is ${value === undefined ? 'undefined' : `a ${typeof value}`}, which Datastore cannot store (null stores a null).`, key.toString());
  if (value instanceof Date || Buffer.isBuffer(value) || value instanceof Key || value instanceof GeoPoint || value instanceof Double) return value;
  if (Array.isArray(value)) return value.map((item, i) => officialValue(item, `${where}[${i}]`, key));
  // Its Int and Double, or their JSON: recognised by their type tag, as the client itself does.
  const tagged = value as { type?: unknown; value?: unknown };
  if (tagged.type === 'DatastoreInt' && (typeof tagged.value === 'string' || typeof tagged.value === 'number') && INTEGER.test(String(tagged.value))) return BigInt(tagged.value);
  if (tagged.type === 'DatastoreDouble' && typeof tagged.value === 'number') return new Double(tagged.value);
  // Its Key and GeoPoint are instances of its classes; a plain object is an embedded entity, as the client saves it.
  if (Object.getPrototypeOf(value) !== Object.prototype) {
    if (isOfficialKey(value)) return fromOfficialKey(value);
    const point = tagged.value as { latitude?: unknown; longitude?: unknown } | undefined;
    if (typeof point?.latitude === 'number' && typeof point.longitude === 'number') return new GeoPoint(point.latitude, point.longitude);
  }
  const embedded: Record<string, Value> = {};
  for (const [name, item] of Object.entries(value)) embedded[name] = officialValue(item, `${where}.${name}`, key);
  return embedded;
}

/**
 * The entity in the shape @google-cloud/datastore's save takes, made with `client` (your app's `Datastore`):
 * `{key, data, excludeFromIndexes}`. Integers past 2^53 are its Int, whole doubles its Double (a plain number
 * that is whole would be saved as an integer), geo points and keys its own; index exclusion is written as its
 * paths. What its values cannot hold is left out: meanings, the keys of embedded entities, and the microseconds
 * of timestamps (its dates, as this package's, hold milliseconds).
 */
export function toOfficialEntity<K, I>(entity: Entity, client: OfficialClient<K, I>): { key: K; data: Record<string, unknown>; excludeFromIndexes: string[] } {
  if (entity.partialOf) {
    throw refuse(
      'toOfficialEntity',
      `${entity.key} was read with only some properties (${entity.partialOf.join(', ')}); saved whole by @google-cloud/datastore, it would lose the others.`,
      entity.key.toString(),
    );
  }
  const data: Record<string, unknown> = {};
  const paths = new Set<string>();
  const stored: Record<string, ValueProto> = {};
  for (const name of entity.names()) {
    const proto = entity.raw(name)!;
    data[name] = toOfficialValue(proto, client);
    exclusionPaths(proto, name, paths);
    stored[name] = proto;
  }
  const excludeFromIndexes = [...paths];
  // Names holding '.', '[]' or '*' read as paths, and arrays mixing excluded and indexed elements have no path:
  // what the paths would do is checked against what is stored.
  const rebuilt: Record<string, ValueProto> = {};
  for (const [name, proto] of Object.entries(stored)) rebuilt[name] = indexedCopy(proto);
  official().addExcludeFromIndexes(excludeFromIndexes, { properties: rebuilt });
  const differs = Object.keys(stored).find((name) => !isDeepStrictEqual(excludedNodes(stored[name]), excludedNodes(rebuilt[name])));
  if (differs !== undefined) {
    throw refuse(
      'toOfficialEntity',
      `the index exclusion of ${entity.key}'s property ${JSON.stringify(differs)} cannot be written as @google-cloud/datastore's excludeFromIndexes paths (a name holding '.', '[]' or '*', or an array with both indexed and excluded values).`,
      entity.key.toString(),
    );
  }
  return { key: toOfficialKey(entity.key, client), data, excludeFromIndexes };
}

function toOfficialValue<K, I>(proto: ValueProto, client: OfficialClient<K, I>): unknown {
  switch (valueTypeOf(proto)) {
    case 'integer': {
      const value = decodeValue(proto);
      return typeof value === 'bigint' ? client.int(value.toString()) : value;
    }
    case 'double': {
      const value = Number(proto.doubleValue);
      return Number.isInteger(value) ? client.double(value) : value;
    }
    case 'key':
      return toOfficialKey(Key.fromProto(proto.keyValue!), client);
    case 'geoPoint':
      return client.geoPoint({ latitude: Number(proto.geoPointValue!.latitude ?? 0), longitude: Number(proto.geoPointValue!.longitude ?? 0) });
    case 'entity': {
      const out: Record<string, unknown> = {};
      for (const [name, item] of Object.entries(proto.entityValue!.properties ?? {})) out[name] = toOfficialValue(item, client);
      return out;
    }
    case 'array':
      return (proto.arrayValue!.values ?? []).map((item) => toOfficialValue(item, client));
    default:
      return decodeValue(proto);
  }
}

/** The excludeFromIndexes paths, in @google-cloud/datastore's notation, that exclude what `proto` excludes. */
function exclusionPaths(proto: ValueProto, path: string, into: Set<string>): void {
  const items = proto.arrayValue?.values;
  if (items) {
    if (items.some((item) => item.excludeFromIndexes)) into.add(`${path}[]`);
    for (const item of items) for (const [name, inner] of Object.entries(item.entityValue?.properties ?? {})) exclusionPaths(inner, `${path}[].${name}`, into);
    return;
  }
  if (proto.excludeFromIndexes) into.add(path);
  for (const [name, inner] of Object.entries(proto.entityValue?.properties ?? {})) exclusionPaths(inner, `${path}.${name}`, into);
}

/** A copy of the value's tree with nothing excluded. */
function indexedCopy(proto: ValueProto): ValueProto {
  const copy: ValueProto = { ...proto, excludeFromIndexes: false };
  if (proto.arrayValue) copy.arrayValue = { values: (proto.arrayValue.values ?? []).map(indexedCopy) };
  if (proto.entityValue) {
    const properties: Record<string, ValueProto> = {};
    for (const [name, inner] of Object.entries(proto.entityValue.properties ?? {})) properties[name] = indexedCopy(inner);
    copy.entityValue = { ...proto.entityValue, properties };
  }
  return copy;
}

/** Where in the value's tree something is excluded: `''`, `[2]`, `.a[0].b`. */
function excludedNodes(proto: ValueProto, at = '', into: string[] = []): string[] {
  if (proto.excludeFromIndexes) into.push(at);
  (proto.arrayValue?.values ?? []).forEach((item, i) => excludedNodes(item, `${at}[${i}]`, into));
  for (const [name, inner] of Object.entries(proto.entityValue?.properties ?? {})) excludedNodes(inner, `${at}.${name}`, into);
  return into;
}

function describe(value: unknown): string {
  if (value === null || typeof value !== 'object') return value === undefined ? 'undefined' : `a ${value === null ? 'null' : typeof value}`;
  return `an object with ${Object.keys(value).join(', ') || 'no fields'}`;
}
