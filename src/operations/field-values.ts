import { Double, type Value } from '../datastore';
import type { FieldSpec } from '../model';

/**
 * A model field's value as the model layer stores it (integers as integers even when whole doubles
 * would do, doubles as doubles, json as text), so that AddFieldData writes what the model would write.
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

/** Where the model puts the field in indexes (json and blobs are unindexed unless said otherwise). */
export function fieldIndexed(spec: FieldSpec): boolean {
  return spec.indexed ?? !(spec.type === 'json' || spec.type === 'blob');
}
