import { DsMigrateError } from '../errors';
import { Double, GeoPoint, Key, type Value } from '../datastore';

export const FIELD_TYPES = ['string', 'integer', 'double', 'boolean', 'timestamp', 'key', 'json', 'entity', 'array', 'blob', 'geoPoint'] as const;
export type FieldType = (typeof FIELD_TYPES)[number];

/** What a field's values are in JavaScript. */
export interface FieldValueMap {
  string: string;
  integer: number | bigint;
  double: number;
  boolean: boolean;
  timestamp: Date;
  key: Key;
  json: unknown;
  entity: Record<string, unknown>;
  array: unknown[];
  blob: Buffer;
  geoPoint: GeoPoint;
}

export interface FieldOptions<T> {
  /** A value, or a function of nothing that makes one (called per entity). */
  default?: T | (() => T);
  nullable?: boolean;
  /** false excludes the property from indexes. Defaults to true (false for json and blob). */
  indexed?: boolean;
  /**
   * At most one entity of the kind (per namespace) holds each value; the model's saves enforce it with a marker
   * entity per value (see unique.ts). Nulls and missing values are not unique. Scalar types only.
   */
  unique?: boolean;
  /** The field's previous property name while a rename is under way (see RenamedFrom). */
  renamedFrom?: string | RenamedFrom;
}

/**
 * A rename in progress: loads fall back to the old property `name` when the new one is missing, and saves write
 * the value under both names until `complete` is set (after CopyFieldData has copied every entity), when saves
 * write only the new name.
 */
export interface RenamedFrom {
  name: string;
  complete?: boolean;
}

/** Types whose values can be unique: arrays, blobs, embedded entities and json have no single comparable value. */
export const UNIQUE_TYPES: readonly FieldType[] = ['string', 'integer', 'double', 'boolean', 'timestamp', 'key', 'geoPoint'];

/** A field, in the plain form that can also be stored (runtime models) and is validated by defineModel. */
export interface FieldSpec<T = unknown> extends FieldOptions<T> {
  type: FieldType;
  /** The element field of an array. */
  items?: FieldSpec;
}

type Builder<K extends FieldType> = (options?: FieldOptions<FieldValueMap[K]>) => FieldSpec<FieldValueMap[K]> & { type: K };
const builder =
  <K extends FieldType>(type: K): Builder<K> =>
  (options = {}) => ({ ...options, type });

/** Field builders: `field.string({default: 'blue'})`, `field.array(field.integer())`. */
export const field = {
  string: builder('string'),
  integer: builder('integer'),
  double: builder('double'),
  boolean: builder('boolean'),
  timestamp: builder('timestamp'),
  key: builder('key'),
  json: builder('json'),
  entity: builder('entity'),
  blob: builder('blob'),
  geoPoint: builder('geoPoint'),
  array<T>(items: FieldSpec<T>, options: FieldOptions<T[]> = {}): FieldSpec<T[]> & { type: 'array' } {
    return { ...options, type: 'array', items: items as FieldSpec };
  },
};

/** Whether a JavaScript value fits a field type; the reason when it does not. */
export function checkValue(spec: FieldSpec, value: unknown): string | undefined {
  if (value === null || value === undefined) return spec.nullable ? undefined : 'is null but the field is not nullable';
  const describe = () => `holds ${describeValue(value)}, expected ${spec.type}`;
  switch (spec.type) {
    case 'string':
      return typeof value === 'string' ? undefined : describe();
    case 'integer':
      return (typeof value === 'number' && Number.isInteger(value)) || typeof value === 'bigint' ? undefined : describe();
    case 'double':
      return typeof value === 'number' ? undefined : describe();
    case 'boolean':
      return typeof value === 'boolean' ? undefined : describe();
    case 'timestamp':
      return value instanceof Date && !Number.isNaN(value.getTime()) ? undefined : describe();
    case 'key':
      return value instanceof Key ? undefined : describe();
    case 'json':
      try {
        return JSON.stringify(value) === undefined ? describe() : undefined;
      } catch {
        return describe();
      }
    case 'entity':
      return isPlainObject(value) ? undefined : describe();
    case 'blob':
      return Buffer.isBuffer(value) ? undefined : describe();
    case 'geoPoint':
      return value instanceof GeoPoint ? undefined : describe();
    case 'array': {
      if (!Array.isArray(value)) return describe();
      for (let i = 0; i < value.length; i++) {
        const reason = checkValue({ ...spec.items!, nullable: spec.items!.nullable ?? false }, value[i]);
        if (reason) return `[${i}] ${reason}`;
      }
      return undefined;
    }
  }
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Date) return 'a timestamp';
  if (value instanceof Key) return 'a key';
  if (Buffer.isBuffer(value)) return 'a blob';
  if (value instanceof GeoPoint) return 'a geo point';
  if (typeof value === 'bigint') return `an integer (${value})`;
  if (typeof value === 'number') return `${Number.isInteger(value) ? 'an integer' : 'a double'} (${value})`;
  if (typeof value === 'string') return `a string (${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)})`;
  if (typeof value === 'object') return 'an embedded entity';
  return `a ${typeof value}`;
}

/** Checks a field definition; the message names the kind and field. */
export function validateFieldSpec(kind: string, name: string, spec: unknown, path = name): FieldSpec {
  const fail = (why: string): never => {
    throw new DsMigrateError('MODEL_DEFINITION', `Model ${kind}: field "${path}" ${why}.`, { kind, field: path });
  };
  if (typeof spec !== 'object' || spec === null) return fail('must be a field definition such as field.string()');
  const candidate = spec as Partial<FieldSpec>;
  if (!FIELD_TYPES.includes(candidate.type as FieldType)) {
    return fail(`has invalid type ${JSON.stringify(candidate.type)}; valid types are ${FIELD_TYPES.join(', ')}`);
  }
  const typed = candidate as FieldSpec;
  if (typed.type === 'array') {
    if (!typed.items) fail('is an array without an element type (field.array(field.string()))');
    if (typed.items!.type === 'array') fail('is an array of arrays, which Datastore cannot store');
    if (typed.items!.unique !== undefined || typed.items!.renamedFrom !== undefined) fail('sets unique or renamedFrom on its element type; set them on the field itself');
    validateFieldSpec(kind, name, typed.items, `${path}[]`);
  }
  if (typed.unique !== undefined && typeof typed.unique !== 'boolean') fail('has unique set to something other than true or false');
  if (typed.unique && !UNIQUE_TYPES.includes(typed.type)) {
    fail(`is ${typed.type}, which cannot be unique; unique fields are ${UNIQUE_TYPES.join(', ')}`);
  }
  if (typed.renamedFrom !== undefined) {
    const rename = renameOf(typed);
    if (!rename || typeof rename.name !== 'string' || !rename.name || /^__.*__$/.test(rename.name) || (rename.complete !== undefined && typeof rename.complete !== 'boolean')) {
      fail("has an invalid renamedFrom: give the old property's name, or {name, complete: true} once the data is copied");
    }
    if (rename!.name === name) fail('is renamed from itself');
  }
  if (typed.indexed === true && (typed.type === 'json' || typed.type === 'entity')) {
    // Allowed for entity in Datastore, but a JSON text over 1500 bytes cannot be indexed at all.
    if (typed.type === 'json') fail('is json, which is stored as unindexed text and cannot be indexed');
  }
  if (typed.default !== undefined && typeof typed.default !== 'function') {
    const reason = checkValue(typed, typed.default);
    if (reason) fail(`has a default that ${reason.replace(/^holds/, 'is')}`);
  }
  return typed;
}

/**
 * A field's value as it is stored: integers as integers, doubles as doubles even when whole, json as
 * text. The model's saves and AddFieldData both write through this, so they write the same thing.
 */
export function storedValue(spec: FieldSpec, value: unknown): Value {
  if (value === null || value === undefined) return null;
  switch (spec.type) {
    case 'integer':
      return typeof value === 'bigint' ? value : BigInt(value as number);
    case 'double':
      return new Double(value as number);
    case 'json':
      return JSON.stringify(value);
    case 'array':
      return (value as unknown[]).map((v) => storedValue(spec.items!, v));
    default:
      return value as Value;
  }
}

/** The field's rename, in one shape whichever way it was declared. */
export function renameOf(spec: FieldSpec): RenamedFrom | undefined {
  const from = spec.renamedFrom;
  if (from === undefined) return undefined;
  return typeof from === 'string' ? { name: from, complete: false } : from;
}

/** Where the model puts the field in indexes (json and blobs are unindexed unless said otherwise). */
export function fieldIndexed(spec: FieldSpec): boolean {
  return spec.indexed ?? !(spec.type === 'json' || spec.type === 'blob');
}
