import { get } from 'node:http';
import type { google } from '@google-cloud/datastore/build/protos/protos';
import { DsMigrateError, errorMessage, sentence } from '../errors';
import { DatastoreChannel } from './channel';
import type { CommitRequest } from './commit-request';
import { decodeCommitResponse, type CommitResult } from './commit-response';
import { keysQueryRpc, type KeysQueryRpc } from './keys-query';
import { lookupRpc, type LookupRpc } from './lookup-response';
import { messageRpc, rawRpc, type RawRpc } from './raw-rpc';

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

/** The RPCs called with gax's plain objects (raw-rpc.ts, messageRpc), typed by the official client's declarations. */
export interface DatastoreRpc {
  runQuery: RawRpc<google.datastore.v1.IRunQueryRequest, google.datastore.v1.IRunQueryResponse>;
  runAggregationQuery: RawRpc<google.datastore.v1.IRunAggregationQueryRequest, google.datastore.v1.IRunAggregationQueryResponse>;
  beginTransaction: RawRpc<google.datastore.v1.IBeginTransactionRequest, google.datastore.v1.IBeginTransactionResponse>;
  rollback: RawRpc<google.datastore.v1.IRollbackRequest, google.datastore.v1.IRollbackResponse>;
  allocateIds: RawRpc<google.datastore.v1.IAllocateIdsRequest, google.datastore.v1.IAllocateIdsResponse>;
  reserveIds: RawRpc<google.datastore.v1.IReserveIdsRequest, google.datastore.v1.IReserveIdsResponse>;
}

export interface ResolvedConnection {
  projectId: string;
  databaseId: string;
  emulatorHost?: string;
  channel: DatastoreChannel;
  client: DatastoreRpc;
  /** Keys-only queries, decoded straight to keys (see keys-query.ts). */
  keysQuery: KeysQueryRpc;
  /** Lookups, decoded straight to keys and properties (see lookup-response.ts). */
  lookup: LookupRpc;
  commit: CommitRpc;
}

/** Commit, its results read only where asked (commit-response.ts). */
export type CommitRpc = RawRpc<CommitRequest, CommitResult>;

/**
 * Commits through raw-rpc.ts, their results read lazily: only a shard's checkpoint asks for its version
 * (ids are allocated before), and gax decoded each of a batch's 500 results twice over, a fifth of the
 * CLI's CPU during a migration.
 */
function commitRpc(channel: DatastoreChannel): CommitRpc {
  return rawRpc(channel, 'Commit', decodeCommitResponse, (request) => request.bytes);
}

/** Every RPC this package makes, on one channel. */
function connectionOn(channel: DatastoreChannel, projectId: string, databaseId: string, emulatorHost?: string): ResolvedConnection {
  const client: DatastoreRpc = {
    runQuery: messageRpc(channel, 'RunQuery'),
    runAggregationQuery: messageRpc(channel, 'RunAggregationQuery'),
    beginTransaction: messageRpc(channel, 'BeginTransaction'),
    rollback: messageRpc(channel, 'Rollback'),
    allocateIds: messageRpc(channel, 'AllocateIds'),
    reserveIds: messageRpc(channel, 'ReserveIds'),
  };
  return { projectId, databaseId, emulatorHost, channel, client, keysQuery: keysQueryRpc(channel), lookup: lookupRpc(channel), commit: commitRpc(channel) };
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
      `No Datastore emulator answers at ${host} (from DATASTORE_EMULATOR_HOST or --emulator-host): ${sentence(errorMessage(error))} ` +
        'Start one with `dsmigrate emulator`, or unset DATASTORE_EMULATOR_HOST to use a real project.',
      { emulatorHost: host },
    );
  }
}

/**
 * Opens the channel this package speaks the v1 API on, with codecs of its own: the official client's
 * high-level entities drop index exclusion on read and can round large integers, which a lossless rewrite
 * cannot afford (docs/architecture.md, invariant 3).
 */
export async function openConnection(options: ConnectionOptions = {}, env: NodeJS.ProcessEnv = process.env): Promise<ResolvedConnection> {
  const emulatorHost = emulatorHostFrom(options, env);
  const databaseId = options.databaseId ?? env.DATASTORE_DATABASE_ID ?? '';
  const explicitProject = options.projectId ?? env.DATASTORE_PROJECT_ID ?? env.GOOGLE_CLOUD_PROJECT ?? env.GCLOUD_PROJECT;
  if (emulatorHost) {
    await checkEmulator(emulatorHost);
    checkHostAndPort(emulatorHost);
    return connectionOn(DatastoreChannel.toEmulator(emulatorHost), explicitProject ?? EMULATOR_DEFAULT_PROJECT, databaseId, emulatorHost);
  }
  // Loaded only for a real project: an emulator needs no credentials.
  const { GoogleAuth } = await import('google-auth-library');
  const auth = new GoogleAuth({
    projectId: explicitProject,
    keyFilename: options.keyFilename,
    scopes: ['https://www.googleapis.com/auth/cloud-platform', 'https://www.googleapis.com/auth/datastore'],
  });
  let channel: DatastoreChannel;
  try {
    channel = await DatastoreChannel.toCloud(auth);
  } catch (error) {
    throw new DsMigrateError(
      'CONNECTION',
      `No Google Cloud credentials were found (${errorMessage(error)}). Run \`gcloud auth application-default login\`, set GOOGLE_APPLICATION_CREDENTIALS, ` +
        'or set DATASTORE_EMULATOR_HOST to use an emulator.',
    );
  }
  let projectId: string;
  if (explicitProject) projectId = explicitProject;
  else {
    try {
      projectId = await auth.getProjectId();
    } catch (error) {
      channel.close();
      throw new DsMigrateError(
        'CONNECTION',
        `No Google Cloud project is set and none could be found from the credentials (${errorMessage(error)}). ` +
          'Pass --project, set GOOGLE_CLOUD_PROJECT, or set DATASTORE_EMULATOR_HOST to use an emulator.',
      );
    }
  }
  return connectionOn(channel, projectId, databaseId);
}

function checkHostAndPort(host: string): void {
  const i = host.lastIndexOf(':');
  if (i < 0 || !Number.isInteger(Number(host.slice(i + 1)))) throw new DsMigrateError('CONNECTION', `Emulator host "${host}" is not host:port.`, { emulatorHost: host });
}
