import { valueTypeOf, type Entity, type EntityProto, type Key, type KeyProto, type ValueProto } from '../datastore';

/**
 * A generous estimate of an entity's encoded size, so that a batch's commit stays under the request
 * limit: entities are only known once read in the transaction, and up to 1 MiB each.
 */
export function entityBytes(entity: Entity): number {
  let bytes = keyBytes(entity.key);
  const names = entity.names();
  for (let i = 0; i < names.length; i++) bytes += 8 + Buffer.byteLength(names[i]) + valueBytes(entity.raw(names[i])!);
  return bytes;
}

export function keyBytes(key: Key): number {
  let bytes = 32 + Buffer.byteLength(key.namespace);
  for (let i = 0; i < key.path.length; i++) {
    const e = key.path[i];
    bytes += 16 + Buffer.byteLength(e.kind) + (e.name !== undefined ? Buffer.byteLength(e.name) : 0);
  }
  return bytes;
}

function valueBytes(proto: ValueProto): number {
  if (proto.stringValue) return 8 + Buffer.byteLength(proto.stringValue);
  if (proto.blobValue) return 8 + proto.blobValue.length;
  if (proto.arrayValue) return 8 + (proto.arrayValue.values ?? []).reduce((n, v) => n + valueBytes(v), 0);
  if (proto.entityValue) {
    let bytes = 8;
    for (const [name, v] of Object.entries(proto.entityValue.properties ?? {})) bytes += 8 + Buffer.byteLength(name) + valueBytes(v);
    return bytes;
  }
  if (proto.keyValue) return 48 + (proto.keyValue.path ?? []).reduce((n, e) => n + 16 + Buffer.byteLength(e.kind ?? '') + Buffer.byteLength(e.name ?? ''), 0);
  return 24;
}

/**
 * An entity's size as Datastore counts it against its limit per entity (MAX_ENTITY_BYTES): the key, each
 * property's name and value, and 32 bytes (https://cloud.google.com/datastore/docs/concepts/storage-size).
 * The Firestore-mode emulator's own count differs from it by a few dozen bytes; the classic emulator checks none.
 */
export function storedBytes(entity: Entity): number {
  let bytes = storedKeyBytes(entity.key.namespace, entity.key.path) + 32;
  const names = entity.names();
  for (let i = 0; i < names.length; i++) bytes += stringBytes(names[i]) + storedValueBytes(entity.raw(names[i])!);
  return bytes;
}

const stringBytes = (text: string) => Buffer.byteLength(text) + 1;

/** A key's size as storedBytes counts it. */
export const storedKeySize = (key: Key): number => storedKeyBytes(key.namespace, key.path);

function storedKeyBytes(namespace: string | null | undefined, path: readonly { kind?: string | null; id?: unknown; name?: string | null }[]): number {
  let bytes = 16 + (namespace ? stringBytes(namespace) : 0);
  for (let i = 0; i < path.length; i++) {
    const { kind, name } = path[i];
    bytes += stringBytes(kind ?? '') + (name ? stringBytes(name) : 8);
  }
  return bytes;
}

function storedEntityBytes(proto: EntityProto): number {
  let bytes = 32 + (proto.key ? storedKeyProtoBytes(proto.key) : 0);
  for (const [name, value] of Object.entries(proto.properties ?? {})) bytes += stringBytes(name) + storedValueBytes(value);
  return bytes;
}

const storedKeyProtoBytes = (key: KeyProto) => storedKeyBytes(key.partitionId?.namespaceId, key.path ?? []);

function storedValueBytes(proto: ValueProto): number {
  switch (valueTypeOf(proto)) {
    case 'string':
      return stringBytes(proto.stringValue ?? '');
    case 'blob':
      return typeof proto.blobValue === 'string' ? Buffer.byteLength(proto.blobValue, 'base64') : (proto.blobValue?.length ?? 0);
    case 'key':
      return storedKeyProtoBytes(proto.keyValue!);
    case 'entity':
      return storedEntityBytes(proto.entityValue!);
    case 'array':
      return (proto.arrayValue?.values ?? []).reduce((n, v) => n + storedValueBytes(v), 0);
    case 'geoPoint':
      return 16;
    case 'integer':
    case 'double':
    case 'timestamp':
      return 8;
    default:
      return 1;
  }
}
