import type { Type } from 'protobufjs';
import type { DatastoreChannel, DatastoreMethod, Routed } from './channel';
import { datastoreType } from './protos';

/** One RPC: a request, and its answer as read. */
export type RawRpc<Request, Response> = (request: Request, timeoutMs: number) => Promise<Response>;

/**
 * Calls `method` on the channel with the request written by `encode` and the answer read by `decode`, both
 * this package's own: where only a few fields of an answer matter (the keys of a keys-only query) or none
 * (a commit's results), reading them from the bytes costs a fraction of reading every field into objects.
 */
export function rawRpc<Request extends Routed, Response>(
  channel: DatastoreChannel,
  method: DatastoreMethod,
  decode: (bytes: Buffer) => Response,
  encode: (request: Request) => Buffer,
): RawRpc<Request, Response> {
  const call = { method, encode, decode };
  return (request, timeoutMs) => channel.call(call, request, timeoutMs);
}

/**
 * A call whose request and answer are the plain objects gax makes: written and read by protobufjs from
 * the official client's protos, with the options gax reads answers with (64-bit integers and enums as
 * strings, defaults filled in, each oneof's member named), so that code written against gax's objects
 * reads these the same.
 */
export function messageRpc<Request extends Routed, Response>(channel: DatastoreChannel, method: DatastoreMethod): RawRpc<Request, Response> {
  let type: Type | undefined;
  const decode = (bytes: Buffer) => {
    type ??= datastoreType(`${method}Response`);
    return type.toObject(type.decode(bytes), { longs: String, enums: String, defaults: true, oneofs: true }) as Response;
  };
  return rawRpc(channel, method, decode, messageEncoder(method));
}

/** The request of `method` written as gax writes it (protobufjs, from a plain object), for answers read by a codec of this package's own. */
export function messageEncoder<Request extends Routed>(method: DatastoreMethod): (request: Request) => Buffer {
  let type: Type | undefined;
  return (request) => {
    type ??= datastoreType(`${method}Request`);
    const bytes = type.encode(type.fromObject(request)).finish();
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  };
}
