import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RequestHandler } from './handler';
import { DEFAULT_READ_DEADLINE_MS } from './http';

export interface WorkerServer {
  readonly server: Server;
  readonly port: number;
  readonly url: string;
  /** Stops taking requests and waits (up to `graceMs`) for those under way. */
  close(graceMs?: number): Promise<void>;
}

export interface WorkerServerOptions {
  port: number;
  host?: string;
  /** Time to send the whole request, headers and body; default DEFAULT_READ_DEADLINE_MS. Pass the handler's readDeadlineMs. */
  readDeadlineMs?: number;
}

/** Serves the handler on `port` (0: any free one). */
export async function startWorkerServer(handler: RequestHandler, options: WorkerServerOptions): Promise<WorkerServer> {
  const deadlineMs = options.readDeadlineMs ?? DEFAULT_READ_DEADLINE_MS;
  // Node checks these two deadlines every connectionsCheckingInterval (30 s by default, longer than the
  // deadline itself). requestTimeout runs only until the request is received: an answer that takes the
  // whole dispatch deadline (up to 30 minutes) is not cut off. The handler keeps its own deadline for
  // the body (http.ts), so that it holds when mounted in another server too; node's is the backstop
  // for headers and for a server the handler never sees.
  const server = createServer({ connectionsCheckingInterval: Math.min(1_000, deadlineMs) }, handler);
  server.headersTimeout = deadlineMs;
  server.requestTimeout = deadlineMs + 1_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host && options.host !== '0.0.0.0' && options.host !== '::' ? options.host : '127.0.0.1';
  return {
    server,
    port,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/`,
    close: (graceMs = 10_000) =>
      new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.closeAllConnections();
          resolve();
        }, graceMs);
        force.unref();
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}
