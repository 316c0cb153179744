import type { google } from '@google-cloud/datastore/build/protos/protos';
import { DsMigrateError } from '../errors';
import { Key } from './keys';

export type ValueProto = google.datastore.v1.IValue;
export type EntityProto = google.datastore.v1.IEntity;

/** A geographic point; a class so that it is never mistaken for an embedded entity. */
export class GeoPoint {
  constructor(
    readonly latitude: number,
    readonly longitude: number,
  ) {}
}

/** Forces a double for a whole number (`new Double(3)`), which would otherwise be stored as an integer. */
export class Double {
  constructor(readonly value: number) {}
}

/**
 * The JavaScript side of a Datastore value. Integers within ±2^53 read as numbers and larger ones as
 * bigints, so nothing is rounded; embedded entities read as plain objects.
 */
export type Value = null | boolean | number | bigint | string | Date | Buffer | Key | GeoPoint | Double | Value[] | { [name: string]: Value };

export type ValueType = 'null' | 'boolean' | 'integer' | 'double' | 'timestamp' | 'key' | 'string' | 'blob' | 'geoPoint' | 'entity' | 'array';

const VALUE_FIELDS: Record<string, ValueType> = {
  nullValue: 'null',
  booleanValue: 'boolean',
  integerValue: 'integer',
  doubleValue: 'double',
  timestampValue: 'timestamp',
  keyValue: 'key',
  stringValue: 'string',
  blobValue: 'blob',
  geoPointValue: 'geoPoint',
  entityValue: 'entity',
  arrayValue: 'array',
};
/** Walked for every value of every entity a batch writes: made once. */
const VALUE_FIELD_LIST = Object.entries(VALUE_FIELDS);

/** Which of the Value oneof fields is set; the gRPC client marks it in `valueType`, hand-built protos may not. */
export function valueTypeOf(proto: ValueProto): ValueType {
  const marked = (proto as { valueType?: string }).valueType;
  if (marked && VALUE_FIELDS[marked]) return VALUE_FIELDS[marked];
  for (const [field, type] of VALUE_FIELD_LIST) if ((proto as Record<string, unknown>)[field] != null) return type;
  return 'null';
}

const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

export function decodeValue(proto: ValueProto): Value {
  switch (valueTypeOf(proto)) {
    case 'null':
      return null;
    case 'boolean':
      return Boolean(proto.booleanValue);
    case 'integer': {
      const big = BigInt(String(proto.integerValue));
      return big >= MIN_SAFE && big <= MAX_SAFE ? Number(big) : big;
    }
    case 'double':
      return Number(proto.doubleValue);
    case 'timestamp': {
      const ts = proto.timestampValue!;
      return new Date(Number(ts.seconds ?? 0) * 1000 + Math.floor((ts.nanos ?? 0) / 1e6));
    }
    case 'key':
      return Key.fromProto(proto.keyValue!);
    case 'string':
      return String(proto.stringValue);
    case 'blob': {
      const blob = proto.blobValue!;
      return typeof blob === 'string' ? Buffer.from(blob, 'base64') : Buffer.from(blob);
    }
    case 'geoPoint':
      return new GeoPoint(Number(proto.geoPointValue!.latitude ?? 0), Number(proto.geoPointValue!.longitude ?? 0));
    case 'entity': {
      const out: { [name: string]: Value } = {};
      for (const [name, v] of Object.entries(proto.entityValue!.properties ?? {})) out[name] = decodeValue(v);
      return out;
    }
    case 'array':
      return (proto.arrayValue!.values ?? []).map(decodeValue);
  }
}

export interface EncodeOptions {
  /** false: excluded from indexes. Applies to the value and, for arrays, to each element (Datastore's rule). */
  indexed?: boolean;
  /** Keep the previous type where the JavaScript value is ambiguous (a whole number that was a double). */
  previous?: ValueProto;
  projectId: string;
  databaseId?: string;
}

export function encodeValue(value: Value | undefined, options: EncodeOptions, path = 'value'): ValueProto {
  const proto = encodeBare(value, options, path);
  if (options.indexed === false && !proto.arrayValue) proto.excludeFromIndexes = true;
  return proto;
}

function encodeBare(value: Value | undefined, options: EncodeOptions, path: string): ValueProto {
  if (value === null || value === undefined) return { nullValue: 'NULL_VALUE' };
  if (typeof value === 'boolean') return { booleanValue: value };
  if (typeof value === 'bigint') return { integerValue: value.toString() };
  if (typeof value === 'number') {
    const wasDouble = options.previous !== undefined && valueTypeOf(options.previous) === 'double';
    if (Number.isInteger(value) && !wasDouble) {
      if (!Number.isSafeInteger(value)) throw new DsMigrateError('BAD_INPUT', `${path}: ${value} is beyond 2^53 and would be rounded; use a bigint.`);
      return { integerValue: String(value) };
    }
    return { doubleValue: value };
  }
  if (typeof value === 'string') return { stringValue: value };
  if (value instanceof Double) return { doubleValue: value.value };
  if (value instanceof Date) {
    const ms = value.getTime();
    if (Number.isNaN(ms)) throw new DsMigrateError('BAD_INPUT', `${path}: invalid Date.`);
    const seconds = Math.floor(ms / 1000);
    return { timestampValue: { seconds: String(seconds), nanos: (ms - seconds * 1000) * 1e6 } };
  }
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return { blobValue: Buffer.from(value) };
  if (value instanceof Key) return { keyValue: value.toProto(options.projectId, options.databaseId) };
  if (value instanceof GeoPoint) return { geoPointValue: { latitude: value.latitude, longitude: value.longitude } };
  if (Array.isArray(value)) {
    const previousItems = options.previous?.arrayValue?.values ?? [];
    // Index exclusion lives on the elements of an array, not on the array.
    const indexed = options.indexed ?? !(previousItems[0]?.excludeFromIndexes ?? false);
    return {
      arrayValue: {
        values: value.map((item, i) => {
          if (Array.isArray(item)) throw new DsMigrateError('BAD_INPUT', `${path}[${i}]: Datastore does not allow an array inside an array.`);
          return encodeValue(item, { ...options, indexed, previous: previousItems[i] }, `${path}[${i}]`);
        }),
      },
    };
  }
  if (typeof value === 'object') {
    const properties: Record<string, ValueProto> = {};
    const previousProps = options.previous?.entityValue?.properties ?? {};
    for (const [name, v] of Object.entries(value)) {
      if (v === undefined) continue;
      const prev = previousProps[name];
      properties[name] = encodeValue(v, { ...options, previous: prev, indexed: prev ? !prev.excludeFromIndexes : undefined }, `${path}.${name}`);
    }
    return { entityValue: { properties } };
  }
  throw new DsMigrateError('BAD_INPUT', `${path}: ${typeof value} values cannot be stored in Datastore.`);
}

/** Whether a value is indexed, as Datastore sees it (an array is indexed when its elements are). */
export function isIndexed(proto: ValueProto): boolean {
  if (proto.arrayValue) return !(proto.arrayValue.values ?? []).some((v) => v.excludeFromIndexes);
  return !proto.excludeFromIndexes;
}

/** Sets or clears index exclusion without touching the value. */
export function withIndexing(proto: ValueProto, indexed: boolean): ValueProto {
  if (proto.arrayValue) {
    return { ...proto, arrayValue: { values: (proto.arrayValue.values ?? []).map((v) => withIndexing(v, indexed)) } };
  }
  return { ...proto, excludeFromIndexes: !indexed };
}
