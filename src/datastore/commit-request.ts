import type { google } from '@google-cloud/datastore/build/protos/protos';
import type { Type } from 'protobufjs';
import { datastoreEnum, datastoreType } from './protos';

let commitType: Type | undefined;
let modes: Record<string, number> | undefined;

/**
 * A CommitRequest of gax's plain objects (as this package's entities are held) straight to bytes. gax's
 * serializer first copies the whole request into protobuf messages (fromObject), which for a commit of
 * 500 entities and their before-images cost as much as encoding them; the encoder reads plain objects as
 * they are. Values' one enum, `nullValue`, is NULL_VALUE, 0 as a name or a number; the request's mode is
 * looked up by name.
 */
export function encodeCommitRequest(request: google.datastore.v1.ICommitRequest): Buffer {
  commitType ??= datastoreType('CommitRequest');
  modes ??= datastoreEnum('CommitRequest.Mode').values;
  const mode = typeof request.mode === 'string' ? modes[request.mode] : request.mode;
  return Buffer.from(commitType.encode({ ...request, mode }).finish());
}
