import type { Entity, Key, ValueProto } from '../datastore';

/**
 * A generous estimate of an entity's encoded size, so that a batch's commit stays under the request
 * limit: entities are only known once read in the transaction, and up to 1 MiB each.
 */
export function entityBytes(entity: Entity): number {
  let bytes = keyBytes(entity.key);
  for (const name of entity.names()) bytes += 8 + Buffer.byteLength(name) + valueBytes(entity.raw(name)!);
  return bytes;
}

export function keyBytes(key: Key): number {
  let bytes = 32 + Buffer.byteLength(key.namespace);
  for (const e of key.path) bytes += 16 + Buffer.byteLength(e.kind) + (e.name !== undefined ? Buffer.byteLength(e.name) : 0);
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
