import type { google } from '@google-cloud/datastore/build/protos/protos';
import { Reader } from 'protobufjs/minimal';
import { forEachField, lengthDelimitedEnd, PackedKeysBuilder, type PackedKeys } from './packed-keys';
import { BYTES, VARINT } from './wire';
import { rawRpc, type GapicClient, type RawRpc } from './raw-rpc';

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
export function keysQueryRpc(gapic: GapicClient): KeysQueryRpc {
  return rawRpc(gapic, 'RunQuery', decodeKeysPage);
}

/** Decodes a RunQueryResponse of a keys-only query, skipping everything but the keys (kept packed), the cursor and whether more follow. */
export function decodeKeysPage(buffer: Uint8Array): KeysPage {
  const reader = Reader.create(buffer);
  // A response carries about three bytes for each byte of its keys (the result's version, times and cursor).
  const keys = new PackedKeysBuilder(Math.ceil(buffer.length / 3));
  const page: Omit<KeysPage, 'keys'> = { moreResults: MORE_RESULTS[0] };
  forEachField(reader, reader.len, (field, wire) => {
    if (field !== 1 || wire !== BYTES) return false;
    // QueryResultBatch
    forEachField(reader, lengthDelimitedEnd(reader), (batchField, batchWire) => {
      if (batchField === 2 && batchWire === BYTES) packResultKey(reader, lengthDelimitedEnd(reader), keys);
      else if (batchField === 4 && batchWire === BYTES) page.endCursor = reader.bytes();
      else if (batchField === 5 && batchWire === VARINT) page.moreResults = MORE_RESULTS[reader.int32()] ?? MORE_RESULTS[0];
      else return false;
      return true;
    });
    return true;
  });
  return { ...page, keys: keys.build() };
}

/** EntityResult → entity (1) → key (1): the key's bytes, as they are. */
function packResultKey(reader: Reader, end: number, keys: PackedKeysBuilder): void {
  forEachField(reader, end, (field, wire) => {
    if (field !== 1 || wire !== BYTES) return false;
    forEachField(reader, lengthDelimitedEnd(reader), (entityField, entityWire) => {
      if (entityField !== 1 || entityWire !== BYTES) return false;
      const keyEnd = lengthDelimitedEnd(reader);
      keys.push(reader.buf, reader.pos, keyEnd);
      reader.pos = keyEnd;
      return true;
    });
    return true;
  });
}
