import { Reader } from 'protobufjs/minimal';
import { fixKeyValues, readWithChanges, type Entity } from './entity';
import type { Key } from './keys';
import { writeKey } from './key-writer';
import { lengthDelimitedEnd, nextField } from './packed-keys';
import { ProtoWriter } from './proto-writer';
import { writeProperty } from './value-writer';
import { BYTES, tag, VARINT } from './wire';

/** A commit as this package sends it: each mutation already a google.datastore.v1.Mutation's bytes. */
export interface CommitRequest {
  projectId: string;
  databaseId: string;
  mode: 'TRANSACTIONAL' | 'NON_TRANSACTIONAL';
  transaction?: Uint8Array | string;
  mutations: readonly Uint8Array[];
}

/** CommitRequest.Mode. */
const MODES = { TRANSACTIONAL: 1, NON_TRANSACTIONAL: 2 } as const;

/** The entity mutations, by their Mutation field. */
const WRITES = { insert: 4, update: 5, upsert: 6 } as const;
export type WriteKind = keyof typeof WRITES;

/**
 * CommitRequest: transaction (1), mode (5), mutations (6), project (8), database (9). The mutations were
 * encoded when they were made (below), which also gives their exact sizes for splitting a commit.
 */
export function encodeCommitRequest(request: CommitRequest): Buffer {
  const writer = new ProtoWriter(request.mutations.reduce((n, m) => n + m.length + 4, 64));
  if (request.transaction !== undefined) writer.uint32(tag(1, BYTES)).bytes(request.transaction);
  writer.uint32(tag(5, VARINT)).int32(MODES[request.mode]);
  for (const mutation of request.mutations) writer.uint32(tag(6, BYTES)).bytes(mutation);
  if (request.projectId) writer.uint32(tag(8, BYTES)).string(request.projectId);
  if (request.databaseId) writer.uint32(tag(9, BYTES)).string(request.databaseId);
  return writer.finish();
}

/**
 * Mutation: an insert (4), update (5) or upsert (6) of an Entity (key 1; properties 3, map entries of name 1
 * and Value 2), with a property mask (9: paths 1). The key is written straight from the Key, and the values
 * from the plain objects the entity holds (as gax reads them: value-writer.ts), where gax would first copy
 * each into a message. An entity read whole keeps the bytes it was read with: the properties it has not
 * changed since are copied from them, as read, and only the changed ones are encoded.
 */
export function encodeWrite(kind: WriteKind, entity: Entity, projectId: string, databaseId: string, maskPaths?: readonly string[]): Uint8Array {
  const writer = new ProtoWriter();
  writer.uint32(tag(WRITES[kind], BYTES)).fork().uint32(tag(1, BYTES)).fork();
  writeKey(writer, entity.key, projectId, databaseId);
  writer.ldelim();
  const read = readWithChanges(entity);
  if (read) copyPropertiesExcept(writer, read.bytes, read.touched);
  for (const name of read ? read.touched : entity.names()) {
    const proto = entity.raw(name);
    if (proto) writeProperty(writer, name, fixKeyValues(proto, projectId, databaseId));
  }
  writer.ldelim();
  if (maskPaths) {
    writer.uint32(tag(9, BYTES)).fork();
    for (const path of maskPaths) writer.uint32(tag(1, BYTES)).string(path);
    writer.ldelim();
  }
  return writer.finish();
}

/** Entity.properties (3) entries. */
const PROPERTY = tag(3, BYTES);
/** A map entry's name (1). */
const NAME = tag(1, BYTES);

/** Property entries as a lookup sent them (an Entity message's field 3), copied in runs, leaving out those named in `except`. */
function copyPropertiesExcept(writer: ProtoWriter, bytes: Uint8Array, except: ReadonlySet<string>): void {
  if (except.size === 0) {
    writer.raw(bytes);
    return;
  }
  const names = [...except].map((name) => Buffer.from(name));
  const reader = Reader.create(bytes);
  let run = 0;
  while (reader.pos < reader.len) {
    const at = reader.pos;
    const field = reader.uint32();
    if (field !== PROPERTY) {
      reader.skipType(field & 7);
      continue;
    }
    const end = lengthDelimitedEnd(reader);
    const name = entryName(reader, end);
    if (names.some((excepted) => Buffer.compare(excepted, name) === 0)) {
      writer.raw(bytes.subarray(run, at));
      run = end;
    }
  }
  writer.raw(bytes.subarray(run));
}

/** The name (as UTF-8 bytes) of the map entry from `reader.pos` to `end`, read without decoding it; the reader is left at `end`. */
function entryName(reader: Reader, end: number): Uint8Array {
  let name: Uint8Array = EMPTY;
  while (nextField(reader, end, NAME)) {
    const nameEnd = lengthDelimitedEnd(reader);
    name = reader.buf.subarray(reader.pos, nameEnd);
    reader.pos = nameEnd;
  }
  return name;
}

const EMPTY = new Uint8Array(0);

/** Mutation: delete (7) of a Key. */
export function encodeDelete(key: Key, projectId: string, databaseId: string): Uint8Array {
  const writer = new ProtoWriter(64).uint32(tag(7, BYTES)).fork();
  writeKey(writer, key, projectId, databaseId);
  return writer.ldelim().finish();
}
