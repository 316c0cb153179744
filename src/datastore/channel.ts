import { stringify } from 'node:querystring';
import { credentials, Client, Metadata, type CallCredentials, type ChannelCredentials } from '@grpc/grpc-js';
import type { GoogleAuth } from 'google-auth-library';

/** The methods of google.datastore.v1.Datastore this package calls. */
export type DatastoreMethod = 'Lookup' | 'RunQuery' | 'RunAggregationQuery' | 'Commit' | 'BeginTransaction' | 'Rollback' | 'AllocateIds' | 'ReserveIds';

/** Where a request goes: the routing header names the project and the database. */
export interface Routed {
  projectId?: string | null;
  databaseId?: string | null;
}

/** One unary call: the request written by `encode`, the answer read by `decode`. */
export interface Call<Request, Response> {
  method: DatastoreMethod;
  encode: (request: Request) => Buffer;
  decode: (bytes: Buffer) => Response;
}

/**
 * The gRPC channel to Datastore: one grpc-js client, on which every call is a unary request with codecs of
 * this package's own (raw-rpc.ts). The official client's gapic layer would build the same channel after
 * loading gax and every Datastore descriptor, about 0.2 s of CPU at each start of the CLI, only for the
 * requests it would then encode itself.
 */
export class DatastoreChannel {
  private readonly client: Client;

  private constructor(address: string, channelCredentials: ChannelCredentials) {
    // As gax opens it: no cap on message sizes (a lookup's answer holds entities of up to 1 MiB each).
    this.client = new Client(address, channelCredentials, { 'grpc.max_receive_message_length': -1, 'grpc.max_send_message_length': -1, 'grpc.initial_reconnect_backoff_ms': 1000 });
  }

  /** A channel to an emulator: plain HTTP/2, no credentials. */
  static toEmulator(host: string): DatastoreChannel {
    return new DatastoreChannel(host, credentials.createInsecure());
  }

  /** A channel to Datastore itself: TLS, and each call carries the credentials' token. */
  static async toCloud(auth: GoogleAuth): Promise<DatastoreChannel> {
    return new DatastoreChannel('datastore.googleapis.com:443', credentials.combineChannelCredentials(credentials.createSsl(), callCredentials(await auth.getClient())));
  }

  call<Request extends Routed, Response>({ method, encode, decode }: Call<Request, Response>, request: Request, timeoutMs: number): Promise<Response> {
    const metadata = new Metadata();
    // The routing header gax would send: it picks the database.
    metadata.add('x-goog-request-params', stringify({ project_id: request.projectId ?? '', database_id: request.databaseId ?? '' }));
    return new Promise<Response>((resolve, reject) => {
      this.client.makeUnaryRequest(`/google.datastore.v1.Datastore/${method}`, encode, decode, request, metadata, { deadline: Date.now() + timeoutMs }, (error, response) =>
        error ? reject(error) : resolve(response as Response),
      );
    });
  }

  close(): void {
    this.client.close();
  }
}

/**
 * A call's credentials from an auth client of google-auth-library: its headers (the token) on every call.
 * grpc-js reads the headers as a plain object's own properties; the auth client gives a `Headers`, whose
 * entries are not, so they are copied into one.
 */
export function callCredentials(client: { getRequestHeaders(url?: string): Promise<{ forEach(each: (value: string, name: string) => void): void }> }): CallCredentials {
  return credentials.createFromGoogleCredential({
    getRequestHeaders: async (url?: string) => {
      const headers: Record<string, string> = {};
      (await client.getRequestHeaders(url)).forEach((value, name) => (headers[name] = value));
      return headers;
    },
  });
}
