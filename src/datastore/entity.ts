import { isDeepStrictEqual } from 'node:util';
import { DsMigrateError } from '../errors';
import { Key } from './keys';
import { decodeValue, encodeValue, isIndexed, valueTypeOf, withIndexing, type EntityProto, type Value, type ValueProto, type ValueType } from './values';

export interface SetOptions {
  /** false excludes the property from indexes; when omitted an existing property keeps its setting. */
  indexed?: boolean;
}

/** An entity's #read and #touched, for bytesAsRead and readWithChanges: set by Entity's static block, so that they stay out of the class's public face. */
let readBytesOf: (entity: Entity) => Uint8Array | undefined;
let touchedOf: (entity: Entity) => ReadonlySet<string> | undefined;
let versionOf: (entity: Entity) => string | undefined;

/**
 * An entity that remembers the exact protobuf of every property it was read with. Untouched properties
 * are written back byte-for-byte (type, meaning, index exclusion, large integers); only properties set
 * through this API are re-encoded. It also records whether anything changed, so unchanged entities
 * are never written.
 */
export class Entity {
  key: Key;
  private readonly properties: Map<string, ValueProto>;
  private dirty = false;
  /** The properties' bytes as the lookup that read this entity whole received them (bytesAsRead): private, so that entities compare by key and properties alone. */
  #read: Uint8Array | undefined = undefined;
  /** The names set, re-indexed or deleted since that lookup: the properties whose bytes as read are no longer theirs (readWithChanges). */
  #touched: Set<string> | undefined = undefined;
  /** The version the lookup answered for this entity (versionAsRead). */
  #version: string | undefined = undefined;
  static {
    readBytesOf = (entity) => entity.#read;
    touchedOf = (entity) => entity.#touched;
    versionOf = (entity) => entity.#version;
  }
  /**
   * Set on an entity read with a property mask: it holds only these properties (those it has of them),
   * and it is written with the same mask, so that the properties it was not read with stay as stored.
   */
  readonly partialOf?: readonly string[];

  constructor(key: Key, properties: Record<string, ValueProto> | Map<string, ValueProto> = {}, partialOf?: readonly string[]) {
    this.key = key;
    // Copied, so that the caller's object or map stays its own; by name, as Object.entries would allocate a pair per property of every entity read.
    this.properties = properties instanceof Map ? new Map(properties) : new Map();
    if (!(properties instanceof Map)) for (const name in properties) if (Object.hasOwn(properties, name)) this.properties.set(name, properties[name]);
    this.partialOf = partialOf;
  }

  /** A new, unsaved entity from plain values. */
  static from(key: Key, values: Record<string, Value>, options: { excludeFromIndexes?: readonly string[] } = {}): Entity {
    // Without this, a @google-cloud/datastore key fails only when the entity is written, far from the cause.
    if (!(key instanceof Key)) throw new DsMigrateError('BAD_INPUT', 'Entity.from takes a Key of datastore-migrate: convert a @google-cloud/datastore key with fromOfficialKey(key).');
    const entity = new Entity(key);
    const excluded = new Set(options.excludeFromIndexes ?? []);
    for (const [name, value] of Object.entries(values)) entity.set(name, value, excluded.has(name) ? { indexed: false } : {});
    return entity;
  }

  /**
   * An entity as read. With `mask` (the lookup's property mask) it is partial, unless the backend sent
   * properties outside the mask: a backend that ignores masks sent it whole, and whole it is written.
   */
  static fromProto(proto: EntityProto, mask?: readonly string[]): Entity {
    if (!proto.key) throw new DsMigrateError('DATASTORE', 'Datastore returned an entity without a key.');
    return Entity.read(Key.fromProto(proto.key), proto.properties ?? {}, mask);
  }

  /** An entity as read, from its key and properties already decoded (see fromProto), and whole, the bytes they were read from; with the version the lookup answered. */
  static read(key: Key, properties: Record<string, ValueProto>, mask?: readonly string[], bytes?: Uint8Array, version?: string): Entity {
    const partial = mask && onlyMasked(properties, mask) ? mask : undefined;
    const entity = new Entity(key, properties, partial);
    if (bytes && !partial) entity.#read = bytes;
    entity.#version = version;
    return entity;
  }

  get changed(): boolean {
    return this.dirty;
  }
  /** Marks the current state as saved. */
  markClean(): void {
    this.dirty = false;
    // What was read is no longer what is stored once this entity, changed, was saved.
    this.#read = undefined;
    this.#touched = undefined;
  }

  has(name: string): boolean {
    return this.properties.has(name);
  }
  names(): string[] {
    return [...this.properties.keys()];
  }
  get(name: string): Value | undefined {
    const proto = this.properties.get(name);
    return proto === undefined ? undefined : decodeValue(proto);
  }
  typeOf(name: string): ValueType | undefined {
    const proto = this.properties.get(name);
    return proto === undefined ? undefined : valueTypeOf(proto);
  }
  isIndexed(name: string): boolean | undefined {
    const proto = this.properties.get(name);
    return proto === undefined ? undefined : isIndexed(proto);
  }

  set(name: string, value: Value, options: SetOptions = {}): this {
    if (!name) throw new DsMigrateError('BAD_INPUT', `An empty property name cannot be set on ${this.key}.`, { key: this.key.toString() });
    const previous = this.properties.get(name);
    const indexed = options.indexed ?? (previous ? isIndexed(previous) : undefined);
    const proto = encodeValue(value, { indexed, previous, projectId: '' }, name);
    this.properties.set(name, proto);
    this.touch(name);
    return this;
  }

  /** Changes only index exclusion, keeping the stored value exactly. */
  setIndexed(name: string, indexed: boolean): this {
    const proto = this.properties.get(name);
    if (proto && isIndexed(proto) !== indexed) {
      this.properties.set(name, withIndexing(proto, indexed));
      this.touch(name);
    }
    return this;
  }

  delete(name: string): boolean {
    const had = this.properties.delete(name);
    if (had) this.touch(name);
    return had;
  }

  raw(name: string): ValueProto | undefined {
    return this.properties.get(name);
  }
  setRaw(name: string, proto: ValueProto): this {
    this.properties.set(name, proto);
    this.touch(name);
    return this;
  }

  /** Marks the entity changed, and the property no longer as read. */
  private touch(name: string): void {
    this.dirty = true;
    if (this.#read) (this.#touched ??= new Set()).add(name);
  }

  /** Plain values of every property (a copy; changing it does not change the entity). */
  toObject(): Record<string, Value> {
    const out: Record<string, Value> = {};
    for (const [name, proto] of this.properties) out[name] = decodeValue(proto);
    return out;
  }

  /**
   * A live view for ergonomic code: `e.data.colour = 'red'`, `delete e.data.legacy`. Reads decode,
   * writes go through `set` (keeping index exclusion) and mark the entity changed.
   */
  get data(): Record<string, Value> {
    return new Proxy({} as Record<string, Value>, {
      get: (_, name) => (typeof name === 'string' ? this.get(name) : undefined),
      set: (_, name, value: Value) => {
        if (typeof name !== 'string') return false;
        this.set(name, value);
        return true;
      },
      deleteProperty: (_, name) => (typeof name === 'string' ? (this.delete(name), true) : false),
      has: (_, name) => typeof name === 'string' && this.has(name),
      ownKeys: () => this.names(),
      getOwnPropertyDescriptor: (_, name) => (typeof name === 'string' && this.has(name) ? { enumerable: true, configurable: true, writable: true, value: this.get(name) } : undefined),
    });
  }

  /** The entity as it is now, partial as it was read, for code that must see it before a change (src/sharding/apply.ts). */
  snapshot(): Entity {
    const snapshot = new Entity(this.key, this.properties, this.partialOf);
    snapshot.#read = bytesAsRead(this);
    return snapshot;
  }

  /** A copy with every property byte-for-byte, under another key (copies of kinds and namespaces). */
  copy(key: Key = this.key): Entity {
    if (this.partialOf) throw new DsMigrateError('BAD_INPUT', `${this.key} was read with only some properties (${this.partialOf.join(', ')}), so it cannot be copied.`, { key: this.key.toString() });
    const copy = new Entity(key, this.properties);
    copy.dirty = true;
    return copy;
  }

  toProto(projectId: string, databaseId = ''): EntityProto {
    return { key: this.key.toProto(projectId, databaseId), properties: writtenProperties(this, projectId, databaseId) };
  }
}

/** The properties as a commit writes them (key values built in code given the project): toProto without the key. */
function writtenProperties(entity: Entity, projectId: string, databaseId = ''): Record<string, ValueProto> {
  const properties: Record<string, ValueProto> = {};
  for (const name of entity.names()) properties[name] = fixKeyValues(entity.raw(name)!, projectId, databaseId);
  return properties;
}

/** The properties' bytes as read (a google.datastore.v1.Entity without its key), while the entity is unchanged since. */
export function bytesAsRead(entity: Entity): Uint8Array | undefined {
  return entity.changed ? undefined : readBytesOf(entity);
}

/** The version Datastore answered when this entity was read (each write of an entity changes it); undefined for an entity made here. */
export function versionAsRead(entity: Entity): string | undefined {
  return versionOf(entity);
}

/**
 * The properties' bytes as read and the names changed since, for an entity read whole and not saved since:
 * a write copies the others' entries as read (commit-request.ts) rather than encoding them again.
 */
export function readWithChanges(entity: Entity): { bytes: Uint8Array; touched: ReadonlySet<string> } | undefined {
  const bytes = readBytesOf(entity);
  return bytes && { bytes, touched: touchedOf(entity) ?? NOTHING_TOUCHED };
}

const NOTHING_TOUCHED: ReadonlySet<string> = new Set();

/** Every property is one of the mask's (a loop rather than Object.keys: run for every entity a masked lookup reads, mostly with none). */
function onlyMasked(properties: Record<string, ValueProto>, mask: readonly string[]): boolean {
  for (const name in properties) if (Object.hasOwn(properties, name) && !mask.includes(name)) return false;
  return true;
}

/** The entity as a write of only these properties (a property mask): the others stay as stored. Not a method: a member's name shadows a property's in the view. */
export function onlyProperties(entity: Entity, names: readonly string[]): Entity {
  return new Entity(entity.key, new Map(names.flatMap((name) => (entity.has(name) ? [[name, entity.raw(name)!] as const] : []))), names);
}

/** Key values built locally carry no project; fill it in (stored ones already have theirs and stay untouched). */
export function fixKeyValues(proto: ValueProto, projectId: string, databaseId: string): ValueProto {
  if (proto.keyValue && !proto.keyValue.partitionId?.projectId) {
    return { ...proto, keyValue: { ...proto.keyValue, partitionId: { ...proto.keyValue.partitionId, projectId, databaseId } } };
  }
  if (proto.arrayValue?.values?.some((v) => v.keyValue || v.entityValue)) {
    return { ...proto, arrayValue: { values: proto.arrayValue.values.map((v) => fixKeyValues(v, projectId, databaseId)) } };
  }
  if (proto.entityValue?.properties) {
    const properties: Record<string, ValueProto> = {};
    for (const [n, v] of Object.entries(proto.entityValue.properties)) properties[n] = fixKeyValues(v, projectId, databaseId);
    return { ...proto, entityValue: { ...proto.entityValue, properties } };
  }
  return proto;
}

/** Entity's public fields, which live on each instance, not its prototype (its private ones are no members: a property may be named `properties`). */
const ENTITY_FIELDS: ReadonlySet<string> = new Set(['key', 'partialOf'] satisfies (keyof Entity)[]);

/** Names the runtime reads on any object it is handed (a promise's value, JSON.stringify): their absence means nothing. */
const PROBES: ReadonlySet<string> = new Set(['then', 'toJSON']);

/** Whether `entity.name` is Entity's own method, accessor or field (or Object's), which a property of that name cannot shadow. */
function isEntityMember(name: string): boolean {
  return name in Entity.prototype || ENTITY_FIELDS.has(name);
}

/** How code names a property of an entity: `entity.total`, or `entity["first name"]`. */
export function propertyAccess(name: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(name) ? `entity.${name}` : `entity[${JSON.stringify(name)}]`;
}

export interface PropertyView {
  /** The entity, as code written for @google-cloud/datastore's plain objects expects it. */
  view: Entity;
  /** Writes back the objects read through the view and changed in place (`view.tags.push(x)`). */
  flush(): void;
}

/**
 * `view.total` reads `entity.get('total')`, `view.total = v` is `entity.set('total', v)` (type, index exclusion
 * and all, as set keeps them) and `delete view.total` is `entity.delete('total')`, so that a map function written
 * for @google-cloud/datastore's plain objects neither reads undefined nor writes into the void. Entity's members
 * keep their meaning (`view.key`, `view.get`); a property of such a name is read with get(). A read of a name the
 * entity lacks returns undefined and is told to `absent`, which a misspelt name can then be reported from.
 * Enumeration (Object.keys, spread) still sees the Entity, so that what a function returns is told apart as before.
 * A proxy per call, only where such code runs: an Entity itself stays a plain object.
 */
export function propertyView(entity: Entity, absent: (name: string) => void): PropertyView {
  // An object read through the view is handed out again on the next read, so that changes made in place add up
  // (`view.tags.push(a); view.tags.push(b)`); flush writes it back if the stored value is still the one it came from.
  const handedOut = new Map<string, { value: Value; proto: ValueProto }>();
  const methods = new Map<string | symbol, unknown>();
  const member = (name: string, what: string): DsMigrateError =>
    // No full stop: the shard engine's message goes on after this one.
    new DsMigrateError(
      'BAD_INPUT',
      `${what} ${propertyAccess(name)}, which is a member of Entity, not a property: use entity.set('${name}', value), entity.get('${name}') and entity.delete('${name}') for a property of that name`,
      {
        key: entity.key.toString(),
      },
    );
  const view: Entity = new Proxy(entity, {
    get(target, name) {
      if (typeof name === 'symbol' || isEntityMember(name)) {
        const value: unknown = Reflect.get(target, name);
        if (typeof value !== 'function' || name === 'constructor') return value;
        // Run on the entity itself, and hand the view back where a method returns the entity (set's chaining).
        let method = methods.get(name);
        if (method === undefined) {
          method = (...args: unknown[]) => {
            const result: unknown = Reflect.apply(value, target, args);
            return result === target ? view : result;
          };
          methods.set(name, method);
        }
        return method;
      }
      const proto = target.raw(name);
      if (proto === undefined) {
        if (!PROBES.has(name)) absent(name);
        return undefined;
      }
      const kept = handedOut.get(name);
      if (kept?.proto === proto) return kept.value;
      const value = decodeValue(proto);
      if (typeof value === 'object' && value !== null) handedOut.set(name, { value, proto });
      return value;
    },
    set(target, name, value: unknown) {
      if (typeof name === 'symbol' || name === 'key') return Reflect.set(target, name, value);
      if (isEntityMember(name)) throw member(name, 'the function assigned');
      if (value === undefined) {
        throw new DsMigrateError('BAD_INPUT', `the function assigned undefined to ${propertyAccess(name)}: assign null to store a null, or delete ${propertyAccess(name)} to remove the property`, {
          key: target.key.toString(),
        });
      }
      target.set(name, value as Value);
      handedOut.delete(name);
      return true;
    },
    deleteProperty(target, name) {
      if (typeof name === 'symbol') return Reflect.deleteProperty(target, name);
      if (isEntityMember(name)) throw member(name, 'the function deleted');
      target.delete(name);
      handedOut.delete(name);
      return true;
    },
    has(target, name) {
      return typeof name === 'symbol' ? Reflect.has(target, name) : isEntityMember(name) || target.has(name);
    },
  });
  return {
    view,
    flush() {
      for (const [name, { value, proto }] of handedOut) {
        if (entity.raw(name) === proto && !isDeepStrictEqual(value, decodeValue(proto))) entity.set(name, value);
      }
    },
  };
}
