import { get } from 'node:http';
// The gapic client alone: the package's index also loads the high-level client, a quarter of a second at every start.
import { DatastoreClient } from '@google-cloud/datastore/build/src/v1/datastore_client';
import type { google } from '@google-cloud/datastore/build/protos/protos';
import { grpc, type CallOptions } from 'google-gax';
import { DsMigrateError, errorMessage } from '../errors';
import { keysQueryRpc, type KeysQueryRpc } from './keys-query';
import { lookupRpc, type LookupRpc } from './lookup-response';
import { encodeCommitRequest, type CommitRequest } from './commit-request';
import { rawRpc, type GapicClient, type RawRpc } from './raw-rpc';

export interface ConnectionOptions {
  /** Falls back to DATASTORE_PROJECT_ID, GOOGLE_CLOUD_PROJECT, then (real project) the credentials' project. */
  projectId?: string;
  /** Firestore database id; '' is the default database. */
  databaseId?: string;
  /** `host:port` of an emulator; falls back to DATASTORE_EMULATOR_HOST. */
  emulatorHost?: string;
  /** A service-account key file for a real project; default credentials otherwise. */
  keyFilename?: string;
}

type Rpc<Req, Res> = (request: Req, options?: CallOptions) => Promise<[Res, ...unknown[]]>;

/** The RPCs we use, typed: the gapic client's own declarations resolve to `any` under our TypeScript. */
export interface DatastoreRpc {
  runQuery: Rpc<google.datastore.v1.IRunQueryRequest, google.datastore.v1.IRunQueryResponse>;
  runAggregationQuery: Rpc<google.datastore.v1.IRunAggregationQueryRequest, google.datastore.v1.IRunAggregationQueryResponse>;
  beginTransaction: Rpc<google.datastore.v1.IBeginTransactionRequest, google.datastore.v1.IBeginTransactionResponse>;
  rollback: Rpc<google.datastore.v1.IRollbackRequest, google.datastore.v1.IRollbackResponse>;
  allocateIds: Rpc<google.datastore.v1.IAllocateIdsRequest, google.datastore.v1.IAllocateIdsResponse>;
  reserveIds: Rpc<google.datastore.v1.IReserveIdsRequest, google.datastore.v1.IReserveIdsResponse>;
  getProjectId(): Promise<string>;
  close(): Promise<void>;
}

export interface ResolvedConnection {
  projectId: string;
  databaseId: string;
  emulatorHost?: string;
  client: DatastoreRpc;
  /** Keys-only queries, decoded straight to keys (see keys-query.ts). */
  keysQuery: KeysQueryRpc;
  /** Lookups, decoded straight to keys and properties (see lookup-response.ts). */
  lookup: LookupRpc;
  commit: CommitRpc;
}

/** Commit, its results left unread. */
export type CommitRpc = RawRpc<CommitRequest, void>;

/**
 * Commits through raw-rpc.ts, their results unread: nothing here uses a commit's versions or keys (ids
 * are allocated before), and gax decoded each of a batch's 500 results twice over, a fifth of the CLI's
 * CPU during a migration.
 */
function commitRpc(gapic: GapicClient): CommitRpc {
  return rawRpc(gapic, 'Commit', () => undefined, encodeCommitRequest);
}

/** The fallback project on an emulator, which accepts any id. */
export const EMULATOR_DEFAULT_PROJECT = 'dsmigrate-local';

export function emulatorHostFrom(options: ConnectionOptions, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const host = options.emulatorHost ?? env.DATASTORE_EMULATOR_HOST;
  return host ? host.replace(/^https?:\/\//, '') : undefined;
}

/** The HTTP status of `GET /` on the emulator. node:http, not fetch: fetch loads undici, about 0.1 s of CPU at every start of the CLI. */
function emulatorStatus(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = get(`http://${host}/`, { timeout: 5000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    request.on('timeout', () => request.destroy(new Error('no answer within 5 s')));
    request.on('error', reject);
  });
}

async function checkEmulator(host: string): Promise<void> {
  try {
    const status = await emulatorStatus(host);
    if (status >= 200 && status < 300) return;
    throw new Error(`HTTP ${status}`);
  } catch (error) {
    throw new DsMigrateError(
      'CONNECTION',
      `No Datastore emulator answers at ${host} (from DATASTORE_EMULATOR_HOST or --emulator-host): ${errorMessage(error)}. ` +
        'Start one with `dsmigrate emulator`, or unset DATASTORE_EMULATOR_HOST to use a real project.',
      { emulatorHost: host },
    );
  }
}

/**
 * Creates the low-level (gapic) client, which hands back raw protobuf entities; the high-level client
 * drops index exclusion on read and can round large integers, which a lossless rewrite cannot afford
 * (docs/architecture.md, invariant 3).
 */
export async function openConnection(options: ConnectionOptions = {}, env: NodeJS.ProcessEnv = process.env): Promise<ResolvedConnection> {
  const emulatorHost = emulatorHostFrom(options, env);
  const databaseId = options.databaseId ?? env.DATASTORE_DATABASE_ID ?? '';
  const explicitProject = options.projectId ?? env.DATASTORE_PROJECT_ID ?? env.GOOGLE_CLOUD_PROJECT ?? env.GCLOUD_PROJECT;
  if (emulatorHost) {
    await checkEmulator(emulatorHost);
    const [servicePath, port] = splitHost(emulatorHost);
    const gapic = new DatastoreClient({
      servicePath,
      port,
      sslCreds: grpc.credentials.createInsecure(),
      projectId: explicitProject ?? EMULATOR_DEFAULT_PROJECT,
      // A universe domain given up front stops google-auth from probing the metadata server (and warning).
      clientOptions: { universeDomain: 'googleapis.com' },
    });
    return { projectId: explicitProject ?? EMULATOR_DEFAULT_PROJECT, databaseId, emulatorHost, client: gapic, keysQuery: keysQueryRpc(gapic), lookup: lookupRpc(gapic), commit: commitRpc(gapic) };
  }
  const gapic = new DatastoreClient({ projectId: explicitProject, keyFilename: options.keyFilename });
  try {
    await gapic.auth.getClient();
  } catch (error) {
    throw new DsMigrateError(
      'CONNECTION',
      `No Google Cloud credentials were found (${errorMessage(error)}). Run \`gcloud auth application-default login\`, set GOOGLE_APPLICATION_CREDENTIALS, ` +
        'or set DATASTORE_EMULATOR_HOST to use an emulator.',
    );
  }
  const client: DatastoreRpc = gapic;
  let projectId: string;
  if (explicitProject) projectId = explicitProject;
  else {
    try {
      projectId = await client.getProjectId();
    } catch (error) {
      throw new DsMigrateError(
        'CONNECTION',
        `No Google Cloud project is set and none could be found from the credentials (${errorMessage(error)}). ` +
          'Pass --project, set GOOGLE_CLOUD_PROJECT, or set DATASTORE_EMULATOR_HOST to use an emulator.',
      );
    }
  }
  return { projectId, databaseId, client, keysQuery: keysQueryRpc(gapic), lookup: lookupRpc(gapic), commit: commitRpc(gapic) };
}

function splitHost(host: string): [string, number] {
  const i = host.lastIndexOf(':');
  const port = Number(host.slice(i + 1));
  if (i < 0 || !Number.isInteger(port)) throw new DsMigrateError('CONNECTION', `Emulator host "${host}" is not host:port.`, { emulatorHost: host });
  return [host.slice(0, i), port];
}
