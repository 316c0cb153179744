import type { google } from '@google-cloud/datastore/build/protos/protos';
import type { Type } from 'protobufjs';
import { datastoreEnum, datastoreType } from './protos';
import { BYTES, tag } from './wire';

/** A mutation as gax's plain object, or an upsert of an entity already encoded (encoded-entity.ts). */
export type CommitMutation = google.datastore.v1.IMutation | { encodedUpsert: Uint8Array };

export interface CommitRequest extends Omit<google.datastore.v1.ICommitRequest, 'mutations'> {
  mutations: CommitMutation[];
}

let commitType: Type | undefined;
let modes: Record<string, number> | undefined;

/** CommitRequest.mutations (6), and Mutation.upsert (6). */
const MUTATION_TAG = tag(6, BYTES);
const UPSERT_TAG = tag(6, BYTES);

/**
 * A CommitRequest of gax's plain objects (as this package's entities are held) straight to bytes. gax's
 * serializer first copies the whole request into protobuf messages (fromObject), which for a commit of
 * 500 entities cost as much as encoding them; the encoder reads plain objects as they are. Values' one
 * enum, `nullValue`, is NULL_VALUE, 0 as a name or a number; the request's mode is looked up by name.
 * Encoded upserts are appended as they are: a repeated field's entries may lie anywhere in a message.
 */
export function encodeCommitRequest(request: CommitRequest): Buffer {
  commitType ??= datastoreType('CommitRequest');
  modes ??= datastoreEnum('CommitRequest.Mode').values;
  const mode = typeof request.mode === 'string' ? modes[request.mode] : request.mode;
  const plain: google.datastore.v1.IMutation[] = [];
  const encoded: Uint8Array[] = [];
  for (const m of request.mutations) {
    if ('encodedUpsert' in m) encoded.push(m.encodedUpsert);
    else plain.push(m);
  }
  const writer = commitType.encode({ ...request, mode, mutations: plain });
  for (const entity of encoded) writer.uint32(MUTATION_TAG).fork().uint32(UPSERT_TAG).bytes(entity).ldelim();
  const bytes = writer.finish();
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes);
}
