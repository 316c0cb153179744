import { hash } from 'node:crypto';
import type { Type } from 'protobufjs';
import { Reader } from 'protobufjs/minimal';
import { bytesAsRead, type Entity } from './entity';
import { datastoreType } from './protos';
import { readProperties } from './value-reader';
import { valueTypeOf, type ValueProto } from './values';
import type { KeyProto } from './keys';

let entityType: Type | undefined;

function type(): Type {
  entityType ??= datastoreType('Entity');
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
  const reader = Reader.create(bytes);
  return readProperties(reader, reader.len);
}

/**
 * A digest of an entity's properties, the same for the entity as a commit sent it and as a lookup reads it
 * back: timestamps count to the microsecond, the precision Datastore keeps, and key values by namespace and
 * path (a key built in code has no project until it is written).
 */
export function propertiesHash(entity: Entity): string {
  // A canonical text built as a string and hashed in one call: it is paid on every change an undo keeps, and objects, JSON and a Hash per entity cost more than the digest.
  return hash(
    'sha256',
    propertiesDigestOf(entity.names(), (name) => entity.raw(name)!),
    'base64',
  );
}

/** Properties as digest text, by name in order: each quoted name, then its value's text. */
function propertiesDigestOf(names: string[], valueOf: (name: string) => ValueProto): string {
  let text = '';
  for (const name of names.sort()) text += JSON.stringify(name) + digestOf(valueOf(name));
  return text;
}

/**
 * A value as digest text: a letter for its one value field, then that value, ended so that the next
 * property's quoted name, a closing bracket or a suffix cannot be read as part of it; then a non-zero
 * meaning (`m<n>;`) and an index exclusion (`x`). Doubles as text (-0 too), blobs in base64.
 */
function digestOf(proto: ValueProto): string {
  let text: string;
  switch (valueTypeOf(proto)) {
    case 'null':
      text = 'n';
      break;
    case 'boolean':
      text = proto.booleanValue ? 'b1' : 'b0';
      break;
    case 'integer':
      text = `i${String(proto.integerValue)};`;
      break;
    case 'double': {
      const double = Number(proto.doubleValue);
      text = `d${Object.is(double, -0) ? '-0' : String(double)};`;
      break;
    }
    case 'timestamp': {
      const nanos = proto.timestampValue?.nanos ?? 0;
      text = `t${String(proto.timestampValue?.seconds ?? 0)}.${nanos - (nanos % 1000)};`;
      break;
    }
    case 'key':
      text = `k${keyDigestOf(proto.keyValue!)}`;
      break;
    case 'string':
      text = `s${JSON.stringify(proto.stringValue ?? '')}`;
      break;
    case 'blob': {
      const blob = proto.blobValue;
      text = `y${typeof blob === 'string' ? Buffer.from(blob, 'base64').toString('base64') : blob ? Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength).toString('base64') : ''};`;
      break;
    }
    case 'geoPoint':
      text = `g${proto.geoPointValue?.latitude ?? 0},${proto.geoPointValue?.longitude ?? 0};`;
      break;
    case 'entity': {
      const inner = proto.entityValue ?? {};
      const properties = (inner.properties ?? {}) as Record<string, ValueProto>;
      text = `e${inner.key ? keyDigestOf(inner.key) : ''}{${propertiesDigestOf(Object.keys(properties), (name) => properties[name])}}`;
      break;
    }
    case 'array':
      text = `a[${(proto.arrayValue?.values ?? []).map(digestOf).join('')}]`;
      break;
  }
  if (proto.meaning) text += `m${proto.meaning};`;
  if (proto.excludeFromIndexes) text += 'x';
  return text;
}

/** A key by namespace and path: `(` namespace, then each element's kind and its name (`n`) or non-zero id (`i`), `)`. */
function keyDigestOf(key: KeyProto): string {
  let text = `(${JSON.stringify(key.partitionId?.namespaceId ?? '')}`;
  for (const e of key.path ?? []) {
    text += JSON.stringify(e.kind ?? '');
    if (e.name) text += `n${JSON.stringify(e.name)}`;
    else if (e.id !== undefined && e.id !== null && String(e.id) !== '0') text += `i${String(e.id)};`;
  }
  return `${text})`;
}

function encode(properties: Record<string, ValueProto>): Buffer {
  const t = type();
  return Buffer.from(t.encode(t.fromObject({ properties: canonicalProperties(properties) })).finish());
}

function canonicalProperties(properties: Record<string, ValueProto>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const name of Object.keys(properties).sort()) out[name] = canonicalValue(properties[name]);
  return out;
}

/** One value with only what it means: its one value field, a non-zero meaning, an index exclusion. */
function canonicalValue(proto: ValueProto): Record<string, unknown> {
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
    case 'double':
      out.doubleValue = Number(proto.doubleValue);
      break;
    case 'timestamp':
      out.timestampValue = { seconds: String(proto.timestampValue?.seconds ?? 0), nanos: proto.timestampValue?.nanos ?? 0 };
      break;
    case 'key':
      out.keyValue = canonicalKey(proto.keyValue!);
      break;
    case 'string':
      out.stringValue = proto.stringValue ?? '';
      break;
    case 'blob':
      out.blobValue = typeof proto.blobValue === 'string' ? Buffer.from(proto.blobValue, 'base64') : Buffer.from(proto.blobValue ?? []);
      break;
    case 'geoPoint':
      out.geoPointValue = { latitude: proto.geoPointValue?.latitude ?? 0, longitude: proto.geoPointValue?.longitude ?? 0 };
      break;
    case 'entity': {
      const inner = proto.entityValue ?? {};
      out.entityValue = { ...(inner.key ? { key: canonicalKey(inner.key) } : {}), properties: canonicalProperties((inner.properties ?? {}) as Record<string, ValueProto>) };
      break;
    }
    case 'array':
      out.arrayValue = { values: (proto.arrayValue?.values ?? []).map(canonicalValue) };
      break;
  }
  if (proto.meaning) out.meaning = proto.meaning;
  if (proto.excludeFromIndexes) out.excludeFromIndexes = true;
  return out;
}

function canonicalKey(key: KeyProto): Record<string, unknown> {
  const partition = key.partitionId ?? {};
  return {
    partitionId: {
      ...(partition.projectId ? { projectId: partition.projectId } : {}),
      ...(partition.databaseId ? { databaseId: partition.databaseId } : {}),
      ...(partition.namespaceId ? { namespaceId: partition.namespaceId } : {}),
    },
    path: (key.path ?? []).map((e) => (e.name ? { kind: e.kind, name: e.name } : e.id !== undefined && e.id !== null && String(e.id) !== '0' ? { kind: e.kind, id: String(e.id) } : { kind: e.kind })),
  };
}
