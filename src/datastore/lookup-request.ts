import type { Key } from './keys';
import { writeKey } from './key-writer';
import { ProtoWriter } from './proto-writer';
import { BYTES, tag } from './wire';

/** A lookup as this package sends it: keys as they are, not plain copies of them. */
export interface LookupRequest {
  projectId: string;
  databaseId: string;
  keys: readonly Key[];
  /** Read inside this transaction. */
  transaction?: Uint8Array | string;
  /** A property mask: the paths (mask-paths.ts) of the only properties to read. */
  paths?: readonly string[];
}

/**
 * LookupRequest: read options (1: transaction 2), keys (3), property mask (5: paths 1), project (8),
 * database (9). gax would copy each key into a message and then encode it: for a batch's hundreds of keys,
 * more work than the rest of the request.
 */
export function encodeLookupRequest(request: LookupRequest): Buffer {
  const writer = new ProtoWriter(64 + request.keys.length * 48);
  if (request.transaction !== undefined) writer.uint32(tag(1, BYTES)).fork().uint32(tag(2, BYTES)).bytes(request.transaction).ldelim();
  for (const key of request.keys) {
    writer.uint32(tag(3, BYTES)).fork();
    writeKey(writer, key, request.projectId, request.databaseId);
    writer.ldelim();
  }
  if (request.paths) {
    writer.uint32(tag(5, BYTES)).fork();
    for (const path of request.paths) writer.uint32(tag(1, BYTES)).string(path);
    writer.ldelim();
  }
  if (request.projectId) writer.uint32(tag(8, BYTES)).string(request.projectId);
  if (request.databaseId) writer.uint32(tag(9, BYTES)).string(request.databaseId);
  return writer.finish();
}
