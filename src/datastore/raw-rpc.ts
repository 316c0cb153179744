import { stringify } from 'node:querystring';
import { grpc } from 'google-gax';

/** A gapic client: its stub (the gRPC client on its channel) is made by initialize(). */
export interface GapicClient {
  initialize(): Promise<unknown>;
}

/** One RPC, answered by a decoder of our own. */
export type RawRpc<Request, Response> = (request: Request, timeoutMs: number) => Promise<Response>;

/**
 * Calls `method` through the gapic client's own stub (its channel, credentials and address), with the
 * request encoded by `encode` (else as gax encodes it) and the response decoded by `decode`. gax decodes every field of a
 * response into a message and then into a plain copy of it; where only a few fields matter (the keys of
 * a keys-only query) or none (a commit's results), reading them from the bytes costs a fraction of that.
 */
export function rawRpc<Request extends { projectId?: string | null; databaseId?: string | null }, Response>(
  gapic: GapicClient,
  method: 'Lookup' | 'RunQuery' | 'Commit',
  decode: (buffer: Uint8Array) => Response,
  encode?: (request: Request) => Buffer,
): RawRpc<Request, Response> {
  let stub: Promise<grpc.Client> | undefined;
  return async (request, timeoutMs) => {
    stub ??= gapic.initialize() as Promise<grpc.Client>;
    const client = await stub;
    const definition = (client.constructor as grpc.ServiceClientConstructor).service[method];
    const metadata = new grpc.Metadata();
    // The routing header gax would send: it picks the database.
    metadata.add('x-goog-request-params', stringify({ project_id: request.projectId ?? '', database_id: request.databaseId ?? '' }));
    return new Promise<Response>((resolve, reject) => {
      client.makeUnaryRequest(definition.path, encode ?? definition.requestSerialize, decode, request, metadata, { deadline: Date.now() + timeoutMs }, (error, response) =>
        error ? reject(error) : resolve(response as Response),
      );
    });
  };
}
