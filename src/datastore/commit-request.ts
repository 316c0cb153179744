import { Reader } from 'protobufjs/minimal';
import { DsMigrateError } from '../errors';
import { fixKeyValues, readWithChanges, type Entity } from './entity';
import type { Key } from './keys';
import { writeKey } from './key-writer';
import { propertyPath } from './mask-paths';
import { lengthDelimitedEnd, nextField } from './packed-keys';
import { ProtoWriter } from './proto-writer';
import type { Mutation } from './transaction';
import { writeProperty } from './value-writer';
import { BYTES, tag, VARINT } from './wire';

/** What a commit request holds besides its mutations. */
export interface CommitHead {
  projectId: string;
  databaseId: string;
  mode: 'TRANSACTIONAL' | 'NON_TRANSACTIONAL';
  transaction?: Uint8Array | string;
}

/** A commit request as sent: its bytes, written whole, and how many mutations it carries. */
export interface CommitRequest {
  projectId: string;
  databaseId: string;
  bytes: Buffer;
  mutations: number;
}

/** Limits on one commit request: mutations, and bytes of the whole request. */
export interface CommitLimits {
  mutations: number;
  bytes: number;
}

/** CommitRequest.Mode. */
const MODES = { TRANSACTIONAL: 1, NON_TRANSACTIONAL: 2 } as const;

/** The entity mutations, by their Mutation field. */
const WRITES = { insert: 4, update: 5, upsert: 6 } as const;
export type WriteKind = keyof typeof WRITES;

/** CommitRequest.mutations (6). */
const MUTATION = tag(6, BYTES);

/**
 * CommitRequests: transaction (1), mode (5), mutations (6), project (8), database (9), in that order. Each
 * mutation is written once, straight into its request's one buffer: a buffer and a copy per mutation were
 * a batch's largest garbage. A request is ended before a mutation that would take it past `limits`, which
 * is moved to the next one; a mutation alone past them travels alone, and the server gives the error.
 */
export function encodeCommitRequests(head: CommitHead, mutations: readonly Mutation[], limits: CommitLimits = { mutations: Infinity, bytes: Infinity }): CommitRequest[] {
  const requests: CommitRequest[] = [];
  const trailer = trailerOf(head);
  // Room for the mutations a request will likely hold, at about a hundred bytes each (it grows past that).
  const capacity = (from: number) => Math.min(64 + Math.min(mutations.length - from, limits.mutations) * 96, limits.bytes);
  let writer = begin(head, capacity(0));
  let count = 0;
  for (let i = 0; i < mutations.length; i++) {
    const at = writer.length;
    writer.uint32(MUTATION).fork();
    writeMutation(writer, mutations[i], head.projectId, head.databaseId);
    writer.ldelim();
    if (count > 0 && (count === limits.mutations || writer.length + trailer.length > limits.bytes)) {
      const moved = Buffer.from(writer.view(at));
      writer.truncate(at);
      requests.push(end(head, writer, trailer, count));
      writer = begin(head, capacity(i)).raw(moved);
      count = 0;
    }
    count++;
  }
  requests.push(end(head, writer, trailer, count));
  return requests;
}

function begin(head: CommitHead, capacity: number): ProtoWriter {
  const writer = new ProtoWriter(capacity);
  if (head.transaction !== undefined) writer.uint32(tag(1, BYTES)).bytes(head.transaction);
  return writer.uint32(tag(5, VARINT)).int32(MODES[head.mode]);
}

/** The project (8) and database (9), which follow the mutations. */
function trailerOf(head: CommitHead): Buffer {
  const writer = new ProtoWriter(64);
  if (head.projectId) writer.uint32(tag(8, BYTES)).string(head.projectId);
  if (head.databaseId) writer.uint32(tag(9, BYTES)).string(head.databaseId);
  return writer.finish();
}

function end(head: CommitHead, writer: ProtoWriter, trailer: Buffer, mutations: number): CommitRequest {
  return { projectId: head.projectId, databaseId: head.databaseId, bytes: writer.raw(trailer).finish(), mutations };
}

/** A Mutation's fields: an entity's insert, update or upsert (with its property mask when read partially), an entity encoded beforehand, or a delete. */
function writeMutation(writer: ProtoWriter, mutation: Mutation, projectId: string, databaseId: string): void {
  if ('upsertEncoded' in mutation) writer.raw(mutation.upsertEncoded.upsert);
  else if ('delete' in mutation) writeDelete(writer, mutation.delete, projectId, databaseId);
  else if ('insert' in mutation) {
    if (mutation.insert.partialOf) throw new DsMigrateError('BAD_INPUT', `${mutation.insert.key} was read with only some properties; it cannot be inserted.`, { key: mutation.insert.key.toString() });
    writeWrite(writer, 'insert', mutation.insert, projectId, databaseId);
  } else if ('upsert' in mutation) writeWrite(writer, 'upsert', mutation.upsert, projectId, databaseId, maskPaths(mutation.upsert));
  else writeWrite(writer, 'update', mutation.update, projectId, databaseId, maskPaths(mutation.update));
}

/**
 * Mutation: an insert (4), update (5) or upsert (6) of an Entity (key 1; properties 3, map entries of name 1
 * and Value 2), with a property mask (9: paths 1). The key is written straight from the Key, and the values
 * from the plain objects the entity holds (as gax reads them: value-writer.ts), where gax would first copy
 * each into a message. An entity read whole keeps the bytes it was read with: the properties it has not
 * changed since are copied from them, as read, and only the changed ones are encoded.
 */
function writeWrite(writer: ProtoWriter, kind: WriteKind, entity: Entity, projectId: string, databaseId: string, paths?: readonly string[]): void {
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
  if (paths) {
    writer.uint32(tag(9, BYTES)).fork();
    for (const path of paths) writer.uint32(tag(1, BYTES)).string(path);
    writer.ldelim();
  }
}

/** A partial entity's write mask; a property set outside it would be silently dropped, so that is refused. */
function maskPaths(entity: Entity): readonly string[] | undefined {
  const mask = entity.partialOf;
  if (!mask) return undefined;
  for (const name of entity.names()) {
    if (mask.includes(name)) continue;
    const outside = entity.names().filter((n) => !mask.includes(n));
    throw new DsMigrateError('BAD_INPUT', `${entity.key} was read with only ${mask.join(', ')}; it cannot be written with ${outside.join(', ')} set.`, { key: entity.key.toString() });
  }
  let paths = pathsOfMask.get(mask);
  if (!paths) pathsOfMask.set(mask, (paths = mask.map(propertyPath)));
  return paths;
}

/** Each mask's paths, made once: the entities of a batch share the mask they were read with. */
const pathsOfMask = new WeakMap<readonly string[], readonly string[]>();

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
function writeDelete(writer: ProtoWriter, key: Key, projectId: string, databaseId: string): void {
  writer.uint32(tag(7, BYTES)).fork();
  writeKey(writer, key, projectId, databaseId);
  writer.ldelim();
}
