import type { FieldType } from './fields';
import type { ItemDefinition } from './schema-shape';

/** A field's type as a schema change sees it: the type, and an array's item type. */
export interface TypeRef {
  readonly type: FieldType;
  readonly items?: ItemDefinition;
}

/** The conversions that lose nothing, so a plan may run them without approval. */
export type BuiltinConverter = 'integer-to-double' | 'wrap-in-array' | 'to-json';

/** The types whose stored values JSON holds exactly, so `to-json` may take them. */
const JSON_SOURCES = new Set<FieldType>(['string', 'integer', 'double', 'boolean', 'entity', 'array', 'timestamp']);

/** The built-in converter from one type to another, when one exists. */
export function builtinConverter(from: TypeRef, to: TypeRef): BuiltinConverter | undefined {
  if (from.type === 'integer' && to.type === 'double') return 'integer-to-double';
  // A null becomes an empty array, never an array holding null, so the items need not be nullable.
  if (to.type === 'array' && from.type !== 'array' && to.items?.type === from.type) return 'wrap-in-array';
  if (to.type === 'json' && JSON_SOURCES.has(from.type) && (from.type !== 'array' || JSON_SOURCES.has(from.items!.type))) return 'to-json';
  return undefined;
}

/** A widening that needs no data change at all (items made nullable). */
export function needsNoConversion(from: TypeRef, to: TypeRef): boolean {
  return from.type === 'array' && to.type === 'array' && from.items!.type === to.items!.type && to.items!.nullable === true;
}

/** A type in words: `integer`, `array of string (nullable)`. */
export function showType(type: TypeRef): string {
  return type.type === 'array' ? `array of ${type.items!.type}${type.items!.nullable ? ' (nullable)' : ''}` : type.type;
}
