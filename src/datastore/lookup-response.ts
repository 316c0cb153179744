import { Reader } from 'protobufjs/minimal';
import { DsMigrateError } from '../errors';
import type { Key } from './keys';
import { encodeLookupRequest, type LookupRequest } from './lookup-request';
import { lengthDelimitedEnd, readInt64, readKey } from './packed-keys';
import type { DatastoreChannel } from './channel';
import { rawRpc, type RawRpc } from './raw-rpc';
import type { ValueProto } from './values';
import { readPropertyEntry } from './value-reader';
import { BYTES, tag, VARINT } from './wire';

/** An entity as a lookup found it: its key, and its properties as gax would have read them. */
export interface FoundEntity {
  key: Key;
  properties: Record<string, ValueProto>;
  /** The properties as sent: a google.datastore.v1.Entity message without its key (a view of the response). */
  bytes?: Uint8Array;
  /** The entity's version: it changes with every write of the entity. */
  version?: string;
}

/** What a lookup answered: the entities found, and the keys the server deferred (to ask again). */
export interface LookupPage {
  found: FoundEntity[];
  deferred: Key[];
}

export type LookupRpc = RawRpc<LookupRequest, LookupPage>;

/**
 * Lookups answered through raw-rpc.ts. gax reads every result whole, into a message and then a plain
 * copy: the entity's key with its partition, the version, two timestamps. We read the key straight from
 * the bytes (as packed-keys.ts does) and skip the rest; the properties are read into the objects gax
 * would make of them (value-reader.ts), so that what is written back is what was read (lossless: values.ts).
 */
export function lookupRpc(channel: DatastoreChannel): LookupRpc {
  return rawRpc(channel, 'Lookup', decodeLookupResponse, encodeLookupRequest);
}

/** LookupResponse.found (1) and deferred (3); EntityResult.entity (1) and version (4). */
const FOUND = tag(1, BYTES);
const DEFERRED = tag(3, BYTES);
const ENTITY = tag(1, BYTES);
const VERSION = tag(4, VARINT);

/** LookupResponse: found (1) → EntityResult, deferred (3) → Key; missing (2), the transaction and the read time are skipped. */
export function decodeLookupResponse(buffer: Uint8Array): LookupPage {
  const reader = Reader.create(buffer);
  const page: LookupPage = { found: [], deferred: [] };
  while (reader.pos < reader.len) {
    const field = reader.uint32();
    if (field === FOUND) page.found.push(readEntityResult(reader, lengthDelimitedEnd(reader)));
    else if (field === DEFERRED) page.deferred.push(readKey(reader, lengthDelimitedEnd(reader)));
    else reader.skipType(field & 7);
  }
  return page;
}

/** EntityResult → entity (1) and version (4); its times and cursor are skipped. */
function readEntityResult(reader: Reader, end: number): FoundEntity {
  let found: FoundEntity | undefined;
  let version: string | undefined;
  while (reader.pos < end) {
    const field = reader.uint32();
    if (field === ENTITY) found = readEntity(reader, lengthDelimitedEnd(reader));
    else if (field === VERSION) version = readInt64(reader);
    else reader.skipType(field & 7);
  }
  if (!found) throw new DsMigrateError('DATASTORE', 'Datastore answered a lookup with a result that holds no entity.');
  if (version !== undefined) found.version = version;
  return found;
}

/** Entity: key (1), properties (3, map entries of name (1) and Value (2)). */
function readEntity(reader: Reader, end: number): FoundEntity {
  let key: Key | undefined;
  const properties: Record<string, ValueProto> = {};
  // Where the property entries lie, while they lie together: their bytes are the entity's stored form.
  let from: number | undefined;
  let to: number | undefined;
  let together = true;
  while (reader.pos < end) {
    const at = reader.pos;
    const tag = reader.uint32();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (wire === BYTES && field === 1) key = readKey(reader, lengthDelimitedEnd(reader));
    else if (wire === BYTES && field === 3) {
      if (from === undefined) from = at;
      else if (to !== at) together = false;
      readPropertyEntry(reader, lengthDelimitedEnd(reader), properties);
      to = reader.pos;
    } else reader.skipType(wire);
  }
  if (!key) throw new DsMigrateError('DATASTORE', 'Datastore answered a lookup with an entity that has no key.');
  if (!together) return { key, properties };
  return { key, properties, bytes: from === undefined ? NO_PROPERTIES : reader.buf.subarray(from, to) };
}

/** The bytes of an entity without properties: shared, as nothing writes into them. */
const NO_PROPERTIES = new Uint8Array(0);
