import { stringify } from 'node:querystring';
import type { google } from '@google-cloud/datastore/build/protos/protos';
import { grpc } from 'google-gax';
import { Reader } from 'protobufjs/minimal';
import { Key, type PathElement } from './keys';

/** One page of a keys-only query. */
export interface KeysPage {
  keys: Key[];
  endCursor?: Uint8Array;
  moreResults: string;
}

/** RunQuery for keys-only queries, answered as keys. */
export type KeysQueryRpc = (request: google.datastore.v1.IRunQueryRequest, timeoutMs: number) => Promise<KeysPage>;

const MORE_RESULTS = ['MORE_RESULTS_TYPE_UNSPECIFIED', 'NOT_FINISHED', 'MORE_RESULTS_AFTER_LIMIT', 'NO_MORE_RESULTS', 'MORE_RESULTS_AFTER_CURSOR'];
const VARINT = 0;
const BYTES = 2;

/**
 * Keys-only queries through the gapic client's own channel (its credentials and address), with a
 * response decoder of our own. gax turns every result into a dozen objects on the way to a key (the
 * entity, its version, two timestamps, a cursor, then plain copies of each): about 1.2 KB and 10 µs
 * per key, and on the Firestore-mode emulator one page is the whole kind. Reading only
 * the keys from the bytes takes a fraction of that, so a kind's keys fit in one page and one query.
 */
export function keysQueryRpc(gapic: { initialize(): Promise<unknown> }): KeysQueryRpc {
  let stub: Promise<grpc.Client> | undefined;
  return async (request, timeoutMs) => {
    stub ??= gapic.initialize() as Promise<grpc.Client>;
    const client = await stub;
    const method = (client.constructor as grpc.ServiceClientConstructor).service.RunQuery;
    const metadata = new grpc.Metadata();
    // The routing header gax would send: it picks the database.
    metadata.add('x-goog-request-params', stringify({ project_id: request.projectId ?? '', database_id: request.databaseId ?? '' }));
    return new Promise<KeysPage>((resolve, reject) => {
      client.makeUnaryRequest(method.path, method.requestSerialize, decodeKeysPage, request, metadata, { deadline: Date.now() + timeoutMs }, (error, page) =>
        error || !page ? reject(error ?? new Error('RunQuery returned no response')) : resolve(page),
      );
    });
  };
}

/** Decodes a RunQueryResponse of a keys-only query, skipping everything but the keys, the cursor and whether more follow. */
export function decodeKeysPage(buffer: Uint8Array): KeysPage {
  const reader = Reader.create(buffer);
  const page: KeysPage = { keys: [], moreResults: MORE_RESULTS[0] };
  forEachField(reader, reader.len, (field, wire) => {
    if (field !== 1 || wire !== BYTES) return false;
    // QueryResultBatch
    forEachField(reader, lengthDelimitedEnd(reader), (batchField, batchWire) => {
      if (batchField === 2 && batchWire === BYTES) {
        const key = readResultKey(reader, lengthDelimitedEnd(reader));
        if (key) page.keys.push(key);
      } else if (batchField === 4 && batchWire === BYTES) page.endCursor = reader.bytes();
      else if (batchField === 5 && batchWire === VARINT) page.moreResults = MORE_RESULTS[reader.int32()] ?? MORE_RESULTS[0];
      else return false;
      return true;
    });
    return true;
  });
  return page;
}

/** Calls `read` for each field up to `end`; a field it does not take (returns false) is skipped. */
function forEachField(reader: Reader, end: number, read: (field: number, wire: number) => boolean): void {
  while (reader.pos < end) {
    const tag = reader.uint32();
    if (!read(tag >>> 3, tag & 7)) reader.skipType(tag & 7);
  }
}

function lengthDelimitedEnd(reader: Reader): number {
  const length = reader.uint32();
  return reader.pos + length;
}

/** EntityResult → entity (1) → key (1). */
function readResultKey(reader: Reader, end: number): Key | undefined {
  let key: Key | undefined;
  forEachField(reader, end, (field, wire) => {
    if (field !== 1 || wire !== BYTES) return false;
    forEachField(reader, lengthDelimitedEnd(reader), (entityField, entityWire) => {
      if (entityField !== 1 || entityWire !== BYTES) return false;
      key = readKey(reader, lengthDelimitedEnd(reader));
      return true;
    });
    return true;
  });
  return key;
}

/** Key: partition_id (1) → namespace_id (4); path (2) → kind (1), id (2), name (3). As Key.fromProto reads them. */
function readKey(reader: Reader, end: number): Key {
  let namespace = '';
  const path: PathElement[] = [];
  forEachField(reader, end, (field, wire) => {
    if (wire !== BYTES) return false;
    if (field === 1) {
      forEachField(reader, lengthDelimitedEnd(reader), (partitionField, partitionWire) => {
        if (partitionField !== 4 || partitionWire !== BYTES) return false;
        namespace = reader.string();
        return true;
      });
    } else if (field === 2) {
      let kind = '';
      let id: string | undefined;
      let name: string | undefined;
      forEachField(reader, lengthDelimitedEnd(reader), (elementField, elementWire) => {
        if (elementField === 1 && elementWire === BYTES) kind = reader.string();
        else if (elementField === 2 && elementWire === VARINT) id = readInt64(reader);
        else if (elementField === 3 && elementWire === BYTES) name = reader.string();
        else return false;
        return true;
      });
      path.push(name ? { kind, name } : id !== undefined && id !== '0' ? { kind, id } : { kind });
    } else return false;
    return true;
  });
  return new Key(path, namespace);
}

/** A varint int64 as a decimal string, exact beyond 2^53: plain arithmetic for the usual ids, BigInt past 49 bits. */
function readInt64(reader: Reader): string {
  const { buf } = reader;
  let pos = reader.pos;
  let value = 0;
  let scale = 1;
  let byte: number;
  do {
    if (pos >= reader.len) throw new RangeError('A key id runs past the end of the response.');
    byte = buf[pos++];
    value += (byte & 0x7f) * scale;
    scale *= 128;
  } while (byte & 0x80 && scale < 2 ** 49);
  if (!(byte & 0x80)) {
    reader.pos = pos;
    return String(value);
  }
  let big = BigInt(value);
  let bigScale = BigInt(scale);
  do {
    if (pos >= reader.len) throw new RangeError('A key id runs past the end of the response.');
    byte = buf[pos++];
    big += BigInt(byte & 0x7f) * bigScale;
    bigScale *= 128n;
  } while (byte & 0x80);
  reader.pos = pos;
  return BigInt.asIntN(64, big).toString();
}
