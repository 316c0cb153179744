import type { google } from '@google-cloud/datastore/build/protos/protos';
import { Reader } from 'protobufjs/minimal';
import { lengthDelimitedEnd, nextField, PackedKeysBuilder, type PackedKeys } from './packed-keys';
import { BYTES, tag, VARINT } from './wire';
import type { DatastoreChannel } from './channel';
import { messageEncoder, rawRpc, type RawRpc } from './raw-rpc';

/** One page of a keys-only query. */
export interface KeysPage {
  keys: PackedKeys;
  endCursor?: Uint8Array;
  moreResults: string;
}

/** RunQuery for keys-only queries, answered as keys. */
export type KeysQueryRpc = RawRpc<google.datastore.v1.IRunQueryRequest, KeysPage>;

const MORE_RESULTS = ['MORE_RESULTS_TYPE_UNSPECIFIED', 'NOT_FINISHED', 'MORE_RESULTS_AFTER_LIMIT', 'NO_MORE_RESULTS', 'MORE_RESULTS_AFTER_CURSOR'];

/**
 * Keys-only queries answered as keys (src/datastore/raw-rpc.ts). gax turns every result into a dozen
 * objects on the way to a key (the entity, its version, two timestamps, a cursor, then plain copies of
 * each): about 1.2 KB and 10 µs per key, and on the Firestore-mode emulator one page is the whole kind.
 * Reading only the keys from the bytes takes a fraction of that, so a kind's keys fit in one page and
 * one query.
 */
export function keysQueryRpc(channel: DatastoreChannel): KeysQueryRpc {
  return rawRpc(channel, 'RunQuery', decodeKeysPage, messageEncoder('RunQuery'));
}

/** RunQueryResponse.batch (1); QueryResultBatch: entity results (2), end cursor (4), more results (5); EntityResult.entity (1); Entity.key (1). */
const BATCH = tag(1, BYTES);
const RESULT = tag(2, BYTES);
const END_CURSOR = tag(4, BYTES);
const MORE = tag(5, VARINT);
const ENTITY = tag(1, BYTES);
const KEY = tag(1, BYTES);

/** Decodes a RunQueryResponse of a keys-only query, skipping everything but the keys (kept packed), the cursor and whether more follow. */
export function decodeKeysPage(buffer: Uint8Array): KeysPage {
  const reader = Reader.create(buffer);
  // A response carries about three bytes for each byte of its keys (the result's version, times and cursor).
  const keys = new PackedKeysBuilder(Math.ceil(buffer.length / 3));
  const page: Omit<KeysPage, 'keys'> = { moreResults: MORE_RESULTS[0] };
  while (nextField(reader, reader.len, BATCH)) {
    const batchEnd = lengthDelimitedEnd(reader);
    while (reader.pos < batchEnd) {
      const batchField = reader.uint32();
      if (batchField === RESULT) packResultKey(reader, lengthDelimitedEnd(reader), keys);
      else if (batchField === END_CURSOR) page.endCursor = reader.bytes();
      else if (batchField === MORE) page.moreResults = MORE_RESULTS[reader.int32()] ?? MORE_RESULTS[0];
      else reader.skipType(batchField & 7);
    }
  }
  return { ...page, keys: keys.build() };
}

/** EntityResult → entity (1) → key (1): the key's bytes, as they are. */
function packResultKey(reader: Reader, end: number, keys: PackedKeysBuilder): void {
  while (nextField(reader, end, ENTITY)) {
    const entityEnd = lengthDelimitedEnd(reader);
    while (nextField(reader, entityEnd, KEY)) {
      const keyEnd = lengthDelimitedEnd(reader);
      keys.push(reader.buf, reader.pos, keyEnd);
      reader.pos = keyEnd;
    }
  }
}
