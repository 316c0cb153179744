import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Root, type IConversionOptions, type Type } from 'protobufjs';
import { bytesAsRead, type Entity } from './entity';
import { valueTypeOf, type EntityProto, type ValueProto } from './values';
import type { KeyProto } from './keys';

/** As src/datastore/lookup-response.ts reads values: the plain objects google-gax makes, so that what is decoded writes back as it was read. */
const GAX_OBJECTS: IConversionOptions = { longs: String, enums: String, defaults: true, oneofs: true };

let entityType: Type | undefined;

function type(): Type {
  entityType ??= Root.fromJSON(JSON.parse(readFileSync(require.resolve('@google-cloud/datastore/build/protos/protos.json'), 'utf8'))).lookupType('google.datastore.v1.Entity');
  return entityType;
}

/**
 * An entity's properties as the bytes of a `google.datastore.v1.Entity` message without its key: every
 * value type, meaning and index exclusion, nested ones too. Those Datastore sent, for an entity unchanged
 * since it was read; otherwise encoded in a canonical order (names sorted, proto3 defaults left out).
 */
export function encodeProperties(entity: Entity, projectId: string, databaseId = ''): Buffer {
  // An entity unchanged since its lookup: the bytes Datastore sent are its stored form, and cost nothing to encode.
  const read = bytesAsRead(entity);
  if (read) return Buffer.from(read);
  return encode(entity.toProto(projectId, databaseId).properties ?? {});
}

/** The properties encodeProperties encoded, as a lookup reads them. */
export function decodeProperties(bytes: Uint8Array): Record<string, ValueProto> {
  const t = type();
  return ((t.toObject(t.decode(bytes), GAX_OBJECTS) as EntityProto).properties ?? {}) as Record<string, ValueProto>;
}

/**
 * A digest of an entity's properties, the same for the entity as a commit sent it and as a lookup reads it
 * back: timestamps count to the microsecond, the precision Datastore keeps, and key values by namespace and
 * path (a key built in code has no project until it is written).
 */
export function propertiesHash(entity: Entity): string {
  // JSON of the canonical form: a digest needs no protobuf bytes, and building them cost more than the rest of a before-image.
  return createHash('sha256')
    .update(JSON.stringify(canonicalProperties(Object.fromEntries(entity.names().map((name) => [name, entity.raw(name)!])), true)))
    .digest('base64');
}

function encode(properties: Record<string, ValueProto>): Buffer {
  const t = type();
  return Buffer.from(t.encode(t.fromObject({ properties: canonicalProperties(properties, false) })).finish());
}

/**
 * `digest`: for propertiesHash, as JSON: timestamps to the microsecond, keys without project and database,
 * blobs in base64 and doubles as text (JSON has no NaN, Infinity or -0).
 */
function canonicalProperties(properties: Record<string, ValueProto>, digest: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const name of Object.keys(properties).sort()) out[name] = canonicalValue(properties[name], digest);
  return out;
}

/** One value with only what it means: its one value field, a non-zero meaning, an index exclusion. */
function canonicalValue(proto: ValueProto, digest: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  switch (valueTypeOf(proto)) {
    case 'null':
      out.nullValue = 0;
      break;
    case 'boolean':
      out.booleanValue = Boolean(proto.booleanValue);
      break;
    case 'integer':
      out.integerValue = String(proto.integerValue);
      break;
    case 'double': {
      const double = Number(proto.doubleValue);
      out.doubleValue = digest ? (Object.is(double, -0) ? '-0' : String(double)) : double;
      break;
    }
    case 'timestamp': {
      const nanos = proto.timestampValue?.nanos ?? 0;
      out.timestampValue = { seconds: String(proto.timestampValue?.seconds ?? 0), nanos: digest ? nanos - (nanos % 1000) : nanos };
      break;
    }
    case 'key':
      out.keyValue = canonicalKey(proto.keyValue!, digest);
      break;
    case 'string':
      out.stringValue = proto.stringValue ?? '';
      break;
    case 'blob':
      out.blobValue = typeof proto.blobValue === 'string' ? Buffer.from(proto.blobValue, 'base64') : Buffer.from(proto.blobValue ?? []);
      if (digest) out.blobValue = (out.blobValue as Buffer).toString('base64');
      break;
    case 'geoPoint':
      out.geoPointValue = { latitude: proto.geoPointValue?.latitude ?? 0, longitude: proto.geoPointValue?.longitude ?? 0 };
      break;
    case 'entity': {
      const inner = proto.entityValue ?? {};
      out.entityValue = { ...(inner.key ? { key: canonicalKey(inner.key, digest) } : {}), properties: canonicalProperties((inner.properties ?? {}) as Record<string, ValueProto>, digest) };
      break;
    }
    case 'array':
      out.arrayValue = { values: (proto.arrayValue?.values ?? []).map((v) => canonicalValue(v, digest)) };
      break;
  }
  if (proto.meaning) out.meaning = proto.meaning;
  if (proto.excludeFromIndexes) out.excludeFromIndexes = true;
  return out;
}

function canonicalKey(key: KeyProto, digest: boolean): Record<string, unknown> {
  const partition = key.partitionId ?? {};
  return {
    partitionId: {
      ...(partition.projectId && !digest ? { projectId: partition.projectId } : {}),
      ...(partition.databaseId && !digest ? { databaseId: partition.databaseId } : {}),
      ...(partition.namespaceId ? { namespaceId: partition.namespaceId } : {}),
    },
    path: (key.path ?? []).map((e) => (e.name ? { kind: e.kind, name: e.name } : e.id !== undefined && e.id !== null && String(e.id) !== '0' ? { kind: e.kind, id: String(e.id) } : { kind: e.kind })),
  };
}
