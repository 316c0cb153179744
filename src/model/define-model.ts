import { Datastore, Entity, Key, type FilterOp, type IdOrName, type PropertyFilter, type QuerySpec, type Value } from '../datastore';
import { DsMigrateError } from '../errors';
import { checkValue, describeValue, fieldIndexed, isPlainObject, storedValue, validateFieldSpec, type FieldSpec } from './fields';
import { kindOf } from './kind-ref';
import { registerModel } from './registry';

export type FieldMap = Record<string, FieldSpec>;

type ValueOf<S> = S extends FieldSpec<infer T> ? (S extends { nullable: true } ? T | null : T) : never;
/** The JavaScript shape of a model's values. */
export type ValuesOf<F extends FieldMap> = { [K in keyof F]: ValueOf<F[K]> };

export interface ModelOptions {
  /** The namespace used when a call gives none; '' (the default namespace) otherwise. */
  namespace?: string;
}

/** A loaded or new entity seen through a model: typed values, plus the lossless entity underneath. */
export interface ModelInstance<V> {
  key: Key;
  values: V;
  /** Every stored property, including those the model does not know (kept on save). */
  entity: Entity;
}

export interface KeyOptions {
  parent?: Key;
  namespace?: string;
}

export interface QueryOptions<F extends FieldMap> {
  namespace?: string;
  /** Equality on fields (`{colour: 'blue'}`) or explicit filters. */
  where?: Partial<ValuesOf<F>> | readonly { field: keyof F & string; op: FilterOp; value: unknown }[];
  ancestor?: Key;
  limit?: number;
}

const RESERVED_FIELD = /^__.*__$/;

/**
 * A model of a kind. Loading fills missing fields with their defaults in memory and never writes;
 * saving writes the model's fields with their index settings and keeps every property the model does
 * not know, so that a removed field's data stays until RemoveFieldData removes it.
 */
export class Model<F extends FieldMap = FieldMap> {
  readonly kind: string;
  readonly fields: Readonly<F>;
  readonly namespace: string;

  constructor(kind: string, fields: F, options: ModelOptions = {}) {
    this.kind = kindOf(kind);
    if (!isPlainObject(fields)) throw new DsMigrateError('MODEL_DEFINITION', `Model ${this.kind}: fields must be an object of field definitions.`, { kind: this.kind });
    const checked: FieldMap = {};
    for (const [name, spec] of Object.entries(fields)) {
      if (!name || RESERVED_FIELD.test(name)) {
        throw new DsMigrateError('MODEL_DEFINITION', `Model ${this.kind}: field name ${JSON.stringify(name)} is reserved or empty.`, { kind: this.kind, field: name });
      }
      checked[name] = validateFieldSpec(this.kind, name, spec);
    }
    this.fields = Object.freeze(checked) as Readonly<F>;
    this.namespace = options.namespace ?? '';
  }

  key(id: IdOrName, options: KeyOptions = {}): Key {
    const namespace = options.namespace ?? options.parent?.namespace ?? this.namespace;
    return options.parent ? options.parent.withNamespace(namespace).child(this.kind, id) : Key.of(this.kind, id, { namespace });
  }

  private toKey(ref: Key | IdOrName, namespace?: string): Key {
    if (ref instanceof Key) {
      if (ref.kind !== this.kind) throw new DsMigrateError('BAD_INPUT', `Key ${ref} is not of kind ${this.kind}.`, { kind: this.kind, key: ref.toString() });
      return ref;
    }
    return this.key(ref, { namespace });
  }

  /** A new instance: given values are checked, missing ones take their defaults. */
  create(ref: Key | IdOrName, values: Partial<ValuesOf<F>> = {}): ModelInstance<ValuesOf<F>> {
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
    const values = this.resolveValues(entity.key, (name, spec) => (entity.has(name) ? fromStored(spec, entity.get(name), this.kind, entity.key, name) : undefined));
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

  /** The entity to write: the model's fields encoded by type with their index setting, unknown properties kept. */
  toEntity(instance: ModelInstance<ValuesOf<F>>): Entity {
    const entity = instance.entity.key.equals(instance.key) ? instance.entity : instance.entity.copy(instance.key);
    for (const [name, spec] of Object.entries(this.fields)) {
      const value = (instance.values as Record<string, unknown>)[name];
      const reason = checkValue(spec, value);
      if (reason) throw typeMismatch(this.kind, instance.key, name, reason);
      entity.set(name, storedValue(spec, value), { indexed: fieldIndexed(spec) });
    }
    return entity;
  }

  async get(store: Datastore, ref: Key | IdOrName, options: { namespace?: string } = {}): Promise<ModelInstance<ValuesOf<F>> | undefined> {
    return (await this.getMany(store, [ref], options))[0];
  }

  async getMany(store: Datastore, refs: readonly (Key | IdOrName)[], options: { namespace?: string } = {}): Promise<(ModelInstance<ValuesOf<F>> | undefined)[]> {
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

  async save(store: Datastore, instances: ModelInstance<ValuesOf<F>> | readonly ModelInstance<ValuesOf<F>>[]): Promise<void> {
    const list = Array.isArray(instances) ? instances : [instances as ModelInstance<ValuesOf<F>>];
    const entities = list.map((i) => this.toEntity(i));
    await store.save(entities);
    list.forEach((instance, i) => (instance.entity = entities[i]));
  }

  async delete(store: Datastore, refs: readonly (Key | IdOrName)[], options: { namespace?: string } = {}): Promise<void> {
    await store.delete(refs.map((r) => this.toKey(r, options.namespace)));
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
    return { kind: this.kind, namespace: options.namespace ?? options.ancestor?.namespace ?? this.namespace, filters, ancestor: options.ancestor, limit: options.limit };
  }
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
export function defineModel<F extends FieldMap>(kind: string, fields: F, options: ModelOptions = {}): Model<F> {
  return registerModel(new Model(kind, fields, options));
}
