import type { Key } from './keys';
import { writeKey } from './key-writer';
import { ProtoWriter } from './proto-writer';
import { BYTES, tag, VARINT } from './wire';

/** The few value types an entity encoded here holds. */
export type EncodedValue = { string: string } | { blob: Uint8Array } | { null: true } | { timestamp: Date };

export interface EncodedProperty {
  name: string;
  value: EncodedValue;
  indexed: boolean;
}

/**
 * An entity written as bytes made here, for entities a batch writes by the hundred beside its data
 * (before-images): no Entity object, no plain copy of it, and no encoding at commit, which for such a
 * batch cost as much as the rest of its client work. Made as the upsert that writes it, once.
 */
export class EncodedEntity {
  constructor(
    readonly key: Key,
    /** The google.datastore.v1.Mutation that upserts it (upsert, 6): what a commit carries. */
    readonly upsert: Uint8Array,
    /** The google.datastore.v1.Entity message, a view into `upsert`. */
    readonly bytes: Uint8Array,
  ) {}
}

/** Mutation.upsert (6) of an Entity: key (1), properties (3: map entries of name 1 and Value 2). */
export function encodeEntity(key: Key, properties: readonly EncodedProperty[], projectId: string, databaseId = ''): EncodedEntity {
  const writer = new ProtoWriter();
  writer.uint32(tag(6, BYTES)).fork();
  writer.uint32(tag(1, BYTES)).fork();
  writeKey(writer, key, projectId, databaseId);
  writer.ldelim();
  for (const { name, value, indexed } of properties) {
    writer.uint32(tag(3, BYTES)).fork().uint32(tag(1, BYTES)).string(name).uint32(tag(2, BYTES)).fork();
    writeValue(writer, value);
    if (!indexed) writer.uint32(tag(19, VARINT)).bool(true);
    writer.ldelim().ldelim();
  }
  const upsert = writer.ldelim().finish();
  // The entity follows the upsert's one-byte tag and its length, a varint ending at its first byte under 128.
  let end = 1;
  while (upsert[end] & 128) end++;
  return new EncodedEntity(key, upsert, upsert.subarray(end + 1));
}

/** Value: null (11), timestamp (10: seconds 1, nanos 2), string (17), blob (18). */
function writeValue(writer: ProtoWriter, value: EncodedValue): void {
  if ('string' in value) writer.uint32(tag(17, BYTES)).string(value.string);
  else if ('blob' in value) writer.uint32(tag(18, BYTES)).bytes(value.blob);
  else if ('null' in value) writer.uint32(tag(11, VARINT)).int32(0);
  else {
    const ms = value.timestamp.getTime();
    const seconds = Math.floor(ms / 1000);
    writer
      .uint32(tag(10, BYTES))
      .fork()
      .uint32(tag(1, VARINT))
      .int64(seconds)
      .uint32(tag(2, VARINT))
      .int32((ms - seconds * 1000) * 1e6)
      .ldelim();
  }
}
