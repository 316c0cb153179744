import { Double, type Entity, type Key, type Value, type ValueType } from '../datastore';
import { DsMigrateError } from '../errors';
import { showType, type BuiltinConverter, type FieldType, type TypeRef } from '../model';

export { builtinConverter, needsNoConversion, type BuiltinConverter, type TypeRef } from '../model';

/**
 * A conversion the caller supplies for a change no built-in converter covers. It gets the stored value
 * (as `entity.get` reads it) and returns the value to store under the new type; throwing fails the plan
 * at that entity, naming its key.
 */
export type ConverterFunction = (value: Value, context: { key: Key; field: string }) => Value;

/** The stored value types each field type writes (see storedValue in src/model/fields.ts). */
const STORED_AS: Record<FieldType, readonly ValueType[]> = {
  string: ['string'],
  integer: ['integer'],
  double: ['double'],
  boolean: ['boolean'],
  timestamp: ['timestamp'],
  key: ['key'],
  json: ['string'],
  entity: ['entity'],
  array: ['array'],
  blob: ['blob'],
  geoPoint: ['geoPoint'],
};

/**
 * Whether a stored property still has the old type's shape and so needs converting. A value already in
 * the new shape (converted by the plan, or saved through the new model) is left alone, so converting
 * twice changes nothing. Text is both a string's and json's stored form: a string field that was indexed
 * is told from converted json (never indexed) by its index setting; otherwise text that is not valid
 * JSON is an unconverted string.
 */
export function needsConversion(entity: Entity, property: string, from: TypeRef & { indexed: boolean }, to: TypeRef): boolean {
  const stored = entity.typeOf(property);
  if (stored === undefined || stored === 'null') return to.type === 'array' && stored === 'null';
  if (to.type === 'json' && from.type === 'string') {
    if (from.indexed) return entity.isIndexed(property) === true;
    return !isJsonText(entity.get(property) as string);
  }
  return !STORED_AS[to.type].includes(stored);
}

function isJsonText(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

export interface Conversion {
  readonly model: string;
  readonly field: string;
  readonly fromVersion: number;
  readonly toVersion: number;
  readonly from: TypeRef & { indexed: boolean };
  readonly to: TypeRef & { indexed: boolean };
  readonly converter: BuiltinConverter | ConverterFunction;
}

/**
 * Converts one entity's property in place when it is still in the old shape; returns whether it changed.
 * The plan's map and the model's loads both call this, so a value read while a plan runs is exactly
 * what the plan will store. Errors name the model, field, versions and key.
 */
export function convertProperty(entity: Entity, property: string, conversion: Conversion): boolean {
  if (!needsConversion(entity, property, conversion.from, conversion.to)) return false;
  const { to } = conversion;
  try {
    if (conversion.converter === 'wrap-in-array') {
      const raw = entity.raw(property)!;
      // The element keeps its exact stored form (an integer stays an integer, a whole double a double).
      if (entity.typeOf(property) === 'null') entity.set(property, [], { indexed: to.indexed });
      else entity.setRaw(property, { arrayValue: { values: [{ ...raw, excludeFromIndexes: !to.indexed }] } });
      return true;
    }
    const value = entity.get(property)!;
    if (conversion.converter === 'integer-to-double') {
      const n = typeof value === 'bigint' ? Number(value) : (value as number);
      if (!Number.isSafeInteger(n)) throw new Error(`${String(value)} is beyond 2^53, where a double would round it`);
      entity.set(property, new Double(n), { indexed: to.indexed });
      return true;
    }
    if (conversion.converter === 'to-json') {
      entity.set(property, JSON.stringify(jsonOf(value)), { indexed: false });
      return true;
    }
    entity.set(property, conversion.converter(value, { key: entity.key, field: conversion.field }), { indexed: to.indexed });
    return true;
  } catch (error) {
    if (error instanceof DsMigrateError) throw error;
    throw new DsMigrateError(
      'OPERATION_FAILED',
      `Model "${conversion.model}" v${conversion.fromVersion}→v${conversion.toVersion}: converting field "${conversion.field}" from ${showType(conversion.from)} to ${showType(to)} failed on ${entity.key}: ${(error as Error)?.message ?? String(error)}.`,
      { model: conversion.model, field: conversion.field, key: entity.key.toString(), fromVersion: conversion.fromVersion, toVersion: conversion.toVersion },
      { cause: error },
    );
  }
}

/** A stored value as JSON data; anything JSON cannot hold exactly is refused rather than mangled. */
function jsonOf(value: Value): unknown {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') throw new Error(`${value} is beyond 2^53, which JSON numbers cannot hold exactly`);
  if (value instanceof Double) return value.value;
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map(jsonOf);
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, jsonOf(v)]));
  }
  throw new Error('it holds a key, blob or geo point, which JSON cannot hold');
}
