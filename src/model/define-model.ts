import pLimit from 'p-limit';
import { asKey, Datastore, Entity, Key, type FilterOp, type IdOrName, type OfficialKey, type PropertyFilter, type QuerySpec, type Value } from '../datastore';
import { DsMigrateError } from '../errors';
import { validateIndexes, type CompositeIndex, type IndexEntry } from './composite-indexes';
import { checkValue, describeValue, fieldIndexed, isPlainObject, renameOf, storedValue, validateFieldSpec, type FieldSpec } from './fields';
import { kindOf } from './kind-ref';
import { registerModel } from './registry';
import { deleteWithMarkers, saveWithMarkers, uniqueValueOf, type UniqueFields } from './unique';

export type FieldMap = Record<string, FieldSpec>;

type ValueOf<S> = S extends FieldSpec<infer T> ? (S extends { nullable: true } ? T | null : T) : never;
/** The JavaScript shape of a model's values. */
export type ValuesOf<F extends FieldMap> = { [K in keyof F]: ValueOf<F[K]> };

export interface ModelOptions<F extends FieldMap = FieldMap> {
  /** The namespace used when a call gives none; '' (the default namespace) otherwise. */
  namespace?: string;
  /** Composite indexes the app's queries need; `dsmigrate indexes` writes them to index.yaml. */
  indexes?: readonly CompositeIndex<keyof F & string>[];
  /**
   * The kind this model's data was stored under before a rename. It changes nothing at run time (the model
   * reads and writes its own kind only): it tells `dsmigrate makemigrations` to copy the old kind's entities
   * (CopyModelData) rather than take the model for a new kind.
   */
  renamedFrom?: string;
}

/** A loaded or new entity seen through a model: typed values, plus the lossless entity underneath. */
export interface ModelInstance<V> {
  key: Key;
  values: V;
  /** Every stored property, including those the model does not know (kept on save). */
  entity: Entity;
}

export interface KeyOptions {
  parent?: Key | OfficialKey;
  namespace?: string;
}

export interface QueryOptions<F extends FieldMap> {
  namespace?: string;
  /** Equality on fields (`{colour: 'blue'}`) or explicit filters. */
  where?: Partial<ValuesOf<F>> | readonly { field: keyof F & string; op: FilterOp; value: unknown }[];
  ancestor?: Key | OfficialKey;
  limit?: number;
}

const RESERVED_FIELD = /^__.*__$/;

/**
 * A save in a transaction touches the entity's group plus, per unique field, the new value's marker, the old
 * value's marker and the owner of a conflicting marker. Eight keeps that within the classic backend's 25 entity
 * groups per transaction (CLASSIC_ENTITY_GROUP_LIMIT in src/datastore/limits.ts).
 */
const MAX_UNIQUE_FIELDS = 8;

/** Saves and deletes of models with unique fields run one transaction per entity, this many at once. */
const MARKED_WRITE_CONCURRENCY = 8;

/**
 * A model of a kind. Loading fills missing fields with their defaults in memory and never writes;
 * saving writes the model's fields with their index settings and keeps every property the model does
 * not know, so that a removed field's data stays until RemoveFieldData removes it.
 */
export class Model<F extends FieldMap = FieldMap> {
  readonly kind: string;
  readonly fields: Readonly<F>;
  readonly namespace: string;
  /** The composite indexes, checked against the fields. */
  readonly indexes: readonly IndexEntry[];
  /** Its unique fields, for the code that keeps their markers (saves here; the operations in src/sharding/processor.ts). */
  readonly unique: UniqueFields | undefined;
  /** The kind the data was stored under before a rename (ModelOptions.renamedFrom). */
  readonly renamedFrom: string | undefined;

  constructor(kind: string, fields: F, options: ModelOptions<F> = {}) {
    this.kind = kindOf(kind);
    if (!isPlainObject(fields)) throw new DsMigrateError('MODEL_DEFINITION', `Model ${this.kind}: fields must be an object of field definitions.`, { kind: this.kind });
    const checked: FieldMap = {};
    for (const [name, spec] of Object.entries(fields)) {
      if (!name || RESERVED_FIELD.test(name)) {
        throw new DsMigrateError('MODEL_DEFINITION', `Model ${this.kind}: field name ${JSON.stringify(name)} is reserved or empty.`, { kind: this.kind, field: name });
      }
      checked[name] = validateFieldSpec(this.kind, name, spec);
    }
    checkRenames(this.kind, checked);
    this.fields = Object.freeze(checked) as Readonly<F>;
    this.namespace = options.namespace ?? '';
    this.indexes = Object.freeze(validateIndexes(this.kind, checked, options.indexes));
    this.renamedFrom = options.renamedFrom === undefined ? undefined : checkKindRename(this.kind, options.renamedFrom);
    const uniqueFields = Object.keys(checked).filter((name) => checked[name].unique);
    if (uniqueFields.length > MAX_UNIQUE_FIELDS) {
      throw new DsMigrateError('MODEL_DEFINITION', `Model ${this.kind} has ${uniqueFields.length} unique fields; at most ${MAX_UNIQUE_FIELDS} fit in one transaction with their markers.`, {
        kind: this.kind,
      });
    }
    this.unique = uniqueFields.length ? { kind: this.kind, fields: uniqueFields, valueOf: (entity, name) => uniqueValueOf(this.kind, name, entity, this.storedProperty(entity, name)) } : undefined;
  }

  /** The property holding a field's value: its own, or during a rename the old one when the new is missing. */
  private storedProperty(entity: Entity, name: string): string | undefined {
    if (entity.has(name)) return name;
    const rename = renameOf(this.fields[name]);
    return rename && entity.has(rename.name) ? rename.name : undefined;
  }

  key(id: IdOrName, options: KeyOptions = {}): Key {
    const parent = options.parent && asKey(options.parent);
    const namespace = options.namespace ?? parent?.namespace ?? this.namespace;
    return parent ? parent.withNamespace(namespace).child(this.kind, id) : Key.of(this.kind, id, { namespace });
  }

  /** A key of this kind from a Key, a @google-cloud/datastore key (converted exactly), or an id or name. */
  private toKey(ref: Key | OfficialKey | IdOrName, namespace?: string): Key {
    // An object is a key, of either client: anything else is refused by asKey, saying what a key has.
    if (typeof ref === 'object') {
      const key = asKey(ref);
      if (key.kind !== this.kind) throw new DsMigrateError('BAD_INPUT', `Key ${key} is not of kind ${this.kind}.`, { kind: this.kind, key: key.toString() });
      return key;
    }
    return this.key(ref, { namespace });
  }

  /** A new instance: given values are checked, missing ones take their defaults. */
  create(ref: Key | OfficialKey | IdOrName, values: Partial<ValuesOf<F>> = {}): ModelInstance<ValuesOf<F>> {
    const key = this.toKey(ref);
    const entity = new Entity(key);
    for (const name of Object.keys(values)) {
      if (!(name in this.fields)) throw new DsMigrateError('BAD_INPUT', `Model ${this.kind} has no field "${name}".`, { kind: this.kind, field: name });
    }
    return { key, entity, values: this.resolveValues(key, (name) => (values as Record<string, unknown>)[name]) };
  }

  /** Sees a stored entity through the model: defaults for missing fields (in memory only) and type checks. */
  fromEntity(entity: Entity): ModelInstance<ValuesOf<F>> {
    if (entity.key.kind !== this.kind) {
      throw new DsMigrateError('BAD_INPUT', `Entity ${entity.key} is not of kind ${this.kind}.`, { kind: this.kind, key: entity.key.toString() });
    }
    const values = this.resolveValues(entity.key, (name, spec) => {
      const property = this.storedProperty(entity, name);
      return property === undefined ? undefined : fromStored(spec, entity.get(property), this.kind, entity.key, name);
    });
    return { key: entity.key, entity, values };
  }

  private resolveValues(key: Key, read: (name: string, spec: FieldSpec) => unknown): ValuesOf<F> {
    const out: Record<string, unknown> = {};
    for (const [name, spec] of Object.entries(this.fields)) {
      let value = read(name, spec);
      if (value === undefined) value = defaultFor(spec, this.kind, key, name);
      const reason = checkValue(spec, value);
      if (reason) throw typeMismatch(this.kind, key, name, reason);
      out[name] = value;
    }
    return out as ValuesOf<F>;
  }

  /**
   * The entity to write: the model's fields encoded by type with their index setting, unknown properties kept.
   * A field being renamed is also written under its old name until the rename is complete, so that code still
   * reading the old name, and CopyFieldData running meanwhile, see the latest value.
   */
  toEntity(instance: ModelInstance<ValuesOf<F>>): Entity {
    const entity = instance.entity.key.equals(instance.key) ? instance.entity : instance.entity.copy(instance.key);
    for (const [name, spec] of Object.entries(this.fields)) {
      const value = (instance.values as Record<string, unknown>)[name];
      const reason = checkValue(spec, value);
      if (reason) throw typeMismatch(this.kind, instance.key, name, reason);
      entity.set(name, storedValue(spec, value), { indexed: fieldIndexed(spec) });
      const rename = renameOf(spec);
      if (rename && !rename.complete) entity.set(rename.name, storedValue(spec, value), { indexed: fieldIndexed(spec) });
    }
    return entity;
  }

  async get(store: Datastore, ref: Key | OfficialKey | IdOrName, options: { namespace?: string } = {}): Promise<ModelInstance<ValuesOf<F>> | undefined> {
    return (await this.getMany(store, [ref], options))[0];
  }

  async getMany(store: Datastore, refs: readonly (Key | OfficialKey | IdOrName)[], options: { namespace?: string } = {}): Promise<(ModelInstance<ValuesOf<F>> | undefined)[]> {
    const entities = await store.lookup(refs.map((r) => this.toKey(r, options.namespace)));
    return entities.map((e) => (e ? this.fromEntity(e) : undefined));
  }

  async *stream(store: Datastore, options: QueryOptions<F> = {}): AsyncGenerator<ModelInstance<ValuesOf<F>>> {
    for await (const entity of store.query(this.querySpec(options))) yield this.fromEntity(entity);
  }

  async query(store: Datastore, options: QueryOptions<F> = {}): Promise<ModelInstance<ValuesOf<F>>[]> {
    const out: ModelInstance<ValuesOf<F>>[] = [];
    for await (const instance of this.stream(store, options)) out.push(instance);
    return out;
  }

  /**
   * Writes the instances. With unique fields, each entity is written in its own transaction with its markers
   * (see unique.ts), so one refused value does not stop the others: those saved stay saved, and the first
   * failure is thrown once all have finished.
   */
  async save(store: Datastore, instances: ModelInstance<ValuesOf<F>> | readonly ModelInstance<ValuesOf<F>>[]): Promise<void> {
    const list = Array.isArray(instances) ? instances : [instances as ModelInstance<ValuesOf<F>>];
    const entities = list.map((i) => this.toEntity(i));
    const unique = this.unique;
    if (unique) await eachSettled(entities, (entity) => store.transaction((tx) => saveWithMarkers(tx, unique, entity)));
    else await store.save(entities);
    list.forEach((instance, i) => (instance.entity = entities[i]));
  }

  /** Deletes the entities; with unique fields, each with the markers it holds, in its own transaction. */
  async delete(store: Datastore, refs: readonly (Key | OfficialKey | IdOrName)[], options: { namespace?: string } = {}): Promise<void> {
    const keys = refs.map((r) => this.toKey(r, options.namespace));
    const unique = this.unique;
    if (unique) await eachSettled(keys, (key) => store.transaction((tx) => deleteWithMarkers(tx, unique, key)));
    else await store.delete(keys);
  }

  private querySpec(options: QueryOptions<F>): QuerySpec {
    const filters: PropertyFilter[] = [];
    const where = options.where ?? {};
    const clauses = Array.isArray(where)
      ? (where as readonly { field: string; op: FilterOp; value: unknown }[])
      : Object.entries(where).map(([field, value]) => ({ field, op: '=' as FilterOp, value }));
    for (const clause of clauses) {
      const spec = this.fields[clause.field];
      if (!spec) throw new DsMigrateError('BAD_INPUT', `Model ${this.kind} has no field "${clause.field}" to filter on.`, { kind: this.kind, field: clause.field });
      if (!fieldIndexed(spec)) {
        throw new DsMigrateError('BAD_INPUT', `Model ${this.kind}: field "${clause.field}" is not indexed, so it cannot be filtered on.`, { kind: this.kind, field: clause.field });
      }
      const value = clause.op === 'IN' || clause.op === 'NOT_IN' ? (clause.value as unknown[]).map((v) => storedValue(spec, v)) : storedValue(spec, clause.value);
      filters.push({ property: clause.field, op: clause.op, value: value as Value });
    }
    const ancestor = options.ancestor && asKey(options.ancestor);
    return { kind: this.kind, namespace: options.namespace ?? ancestor?.namespace ?? this.namespace, filters, ancestor, limit: options.limit };
  }
}

/** Runs `fn` on every item, a few at a time; throws the first failure after all have finished. */
async function eachSettled<T>(items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
  const limit = pLimit(MARKED_WRITE_CONCURRENCY);
  const results = await Promise.allSettled(items.map((item) => limit(() => fn(item))));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/** A rename's old name must be free: a field of the model under that name would be written twice over. */
function checkRenames(kind: string, fields: FieldMap): void {
  const claimed = new Map<string, string>();
  for (const [name, spec] of Object.entries(fields)) {
    const rename = renameOf(spec);
    if (!rename) continue;
    if (rename.name in fields) {
      throw new DsMigrateError('MODEL_DEFINITION', `Model ${kind}: field "${name}" is renamed from "${rename.name}", which is still a field of the model; remove the old field.`, {
        kind,
        field: name,
      });
    }
    const twin = claimed.get(rename.name);
    if (twin) throw new DsMigrateError('MODEL_DEFINITION', `Model ${kind}: fields "${twin}" and "${name}" are both renamed from "${rename.name}".`, { kind, field: name });
    claimed.set(rename.name, name);
  }
}

function checkKindRename(kind: string, from: unknown): string {
  const fail = (why: string): never => {
    throw new DsMigrateError('MODEL_DEFINITION', `Model ${kind}: renamedFrom ${why}.`, { kind });
  };
  if (typeof from !== 'string') return fail("must be the old kind's name, such as renamedFrom: 'Person'");
  try {
    kindOf(from);
  } catch (error) {
    return fail(`is not a valid kind: ${(error as Error).message}`);
  }
  return from === kind ? fail("names the model's own kind; give the kind its data was stored under before") : from;
}

function defaultFor(spec: FieldSpec, kind: string, key: Key, name: string): unknown {
  if (spec.default !== undefined) {
    const value = typeof spec.default === 'function' ? (spec.default as () => unknown)() : structuredCloneValue(spec.default);
    const reason = checkValue(spec, value);
    if (reason) throw new DsMigrateError('MODEL_DEFINITION', `Model ${kind}: the default of field "${name}" ${reason.replace(/^holds/, 'returned')}.`, { kind, field: name, key: key.toString() });
    return value;
  }
  if (spec.nullable) return null;
  if (spec.type === 'array') return [];
  throw typeMismatch(kind, key, name, 'is missing and the field has no default (give it a default or make it nullable)');
}

/** Defaults that are objects or arrays must not be shared between instances. */
function structuredCloneValue(value: unknown): unknown {
  return Array.isArray(value) || isPlainObject(value) ? structuredClone(value) : value;
}

function typeMismatch(kind: string, key: Key, field: string, reason: string): DsMigrateError {
  return new DsMigrateError('TYPE_MISMATCH', `${kind} ${key}: field "${field}" ${reason}.`, { kind, key: key.toString(), field });
}

/** Converts what Datastore holds to the field's JavaScript type, where the conversion is exact. */
function fromStored(spec: FieldSpec, value: Value | undefined, kind: string, key: Key, name: string): unknown {
  if (value === null || value === undefined) return value;
  if (spec.type === 'double' && typeof value === 'bigint') return Number(value);
  if (spec.type === 'json') {
    if (typeof value !== 'string') return value;
    try {
      return JSON.parse(value);
    } catch {
      throw typeMismatch(kind, key, name, `holds ${describeValue(value)} that is not valid JSON`);
    }
  }
  if (spec.type === 'array' && Array.isArray(value)) return value.map((v) => fromStored(spec.items!, v, kind, key, name));
  return value;
}

/** Defines a model of a kind; `defineModel('Person', {colour: field.string({default: 'blue'})})`. */
export function defineModel<F extends FieldMap>(kind: string, fields: F, options: ModelOptions<F> = {}): Model<F> {
  return registerModel(new Model(kind, fields, options));
}
