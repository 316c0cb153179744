import { DsMigrateError } from '../errors';
import { Key } from './keys';
import { decodeValue, encodeValue, isIndexed, valueTypeOf, withIndexing, type EntityProto, type Value, type ValueProto, type ValueType } from './values';

export interface SetOptions {
  /** false excludes the property from indexes; when omitted an existing property keeps its setting. */
  indexed?: boolean;
}

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
  /**
   * Set on an entity read with a property mask: it holds only these properties (those it has of them),
   * and it is written with the same mask, so that the properties it was not read with stay as stored.
   */
  readonly partialOf?: readonly string[];

  constructor(key: Key, properties: Record<string, ValueProto> | Map<string, ValueProto> = {}, partialOf?: readonly string[]) {
    this.key = key;
    this.properties = properties instanceof Map ? new Map(properties) : new Map(Object.entries(properties));
    this.partialOf = partialOf;
  }

  /** A new, unsaved entity from plain values. */
  static from(key: Key, values: Record<string, Value>, options: { excludeFromIndexes?: readonly string[] } = {}): Entity {
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

  /** An entity as read, from its key and properties already decoded (see fromProto). */
  static read(key: Key, properties: Record<string, ValueProto>, mask?: readonly string[]): Entity {
    const partial = mask && Object.keys(properties).every((name) => mask.includes(name)) ? mask : undefined;
    return new Entity(key, properties, partial);
  }

  get changed(): boolean {
    return this.dirty;
  }
  /** Marks the current state as saved. */
  markClean(): void {
    this.dirty = false;
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
    this.dirty = true;
    return this;
  }

  /** Changes only index exclusion, keeping the stored value exactly. */
  setIndexed(name: string, indexed: boolean): this {
    const proto = this.properties.get(name);
    if (proto && isIndexed(proto) !== indexed) {
      this.properties.set(name, withIndexing(proto, indexed));
      this.dirty = true;
    }
    return this;
  }

  delete(name: string): boolean {
    const had = this.properties.delete(name);
    if (had) this.dirty = true;
    return had;
  }

  raw(name: string): ValueProto | undefined {
    return this.properties.get(name);
  }
  setRaw(name: string, proto: ValueProto): this {
    this.properties.set(name, proto);
    this.dirty = true;
    return this;
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
    return new Entity(this.key, new Map(this.properties), this.partialOf);
  }

  /** A copy with every property byte-for-byte, under another key (copies of kinds and namespaces). */
  copy(key: Key = this.key): Entity {
    if (this.partialOf) throw new DsMigrateError('BAD_INPUT', `${this.key} was read with only some properties (${this.partialOf.join(', ')}), so it cannot be copied.`, { key: this.key.toString() });
    const copy = new Entity(key, this.properties);
    copy.dirty = true;
    return copy;
  }

  toProto(projectId: string, databaseId = ''): EntityProto {
    const properties: Record<string, ValueProto> = {};
    for (const [name, proto] of this.properties) properties[name] = fixKeyValues(proto, projectId, databaseId);
    return { key: this.key.toProto(projectId, databaseId), properties };
  }
}

/** Key values built locally carry no project; fill it in (stored ones already have theirs and stay untouched). */
function fixKeyValues(proto: ValueProto, projectId: string, databaseId: string): ValueProto {
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
