import type { Datastore } from '../datastore';
import { createTasksClient, Pipeline, type TasksApi, type WorkerSettings } from '../executors/cloud-tasks';
import { schemaMigrationResolver } from '../dynamic';
import { resolverOf, type MigrationGraph } from '../migrations';
import { authenticatorFor, type CertSource } from './auth';
import { createWorkerHandler, jsonLog, type RequestHandler, type WorkerLogEntry } from './handler';
import { startWorkerServer, type WorkerServer } from './server';

export interface WorkerOptions {
  store: Datastore;
  /**
   * The same migrations as the runs it serves (loadGraph of the app's migrations directory). Runtime
   * models' schema migrations (src/dynamic) need no files: the worker rebuilds them from what is stored.
   */
  graph: MigrationGraph;
  settings: WorkerSettings;
  /** Default: a client for settings.emulatorHost, or for Cloud Tasks with the ambient credentials. */
  tasks?: TasksApi;
  /** OIDC verification keys (tests); default Google's. */
  certs?: CertSource;
  log?: (entry: WorkerLogEntry) => void;
}

/** The worker's request handler, for mounting in an existing server (express, fastify, node:http). */
export function createWorker(options: WorkerOptions): { handler: RequestHandler; pipeline: Pipeline; tasks: TasksApi } {
  const { settings } = options;
  const tasks = options.tasks ?? createTasksClient(settings.emulatorHost);
  const pipeline = new Pipeline({
    store: options.store,
    graph: options.graph,
    resolve: resolverOf(options.graph, schemaMigrationResolver(options.store)),
    tasks,
    secret: settings.auth.kind === 'hmac' ? settings.auth.secret : undefined,
    log: (line) => (options.log ?? jsonLog)({ severity: 'INFO', message: line, status: 0 }),
  });
  const handler = createWorkerHandler({ pipeline, authenticator: authenticatorFor(settings.auth, { certs: options.certs }), log: options.log });
  return { handler, pipeline, tasks };
}

export interface RunningWorker extends WorkerServer {
  /** Closes the server, then the Cloud Tasks client it made. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * A worker serving HTTP on `port` (0: any free one). By default on every interface with OIDC tokens,
 * and on the loopback one with a shared secret: that scheme is the emulator's, for development on one
 * machine, and a worker started for it is reachable from the network only when `host` says so.
 */
export async function startWorker(options: WorkerOptions & { port?: number; host?: string }): Promise<RunningWorker> {
  const { handler, tasks } = createWorker(options);
  const host = options.host ?? (options.settings.auth.kind === 'hmac' ? '127.0.0.1' : '0.0.0.0');
  const server = await startWorkerServer(handler, { port: options.port ?? 0, host });
  return {
    ...server,
    async stop(graceMs) {
      await server.close(graceMs);
      if (!options.tasks) await tasks.close();
    },
  };
}
