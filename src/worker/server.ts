import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RequestHandler } from './handler';

export interface WorkerServer {
  readonly server: Server;
  readonly port: number;
  readonly url: string;
  /** Stops taking requests and waits (up to `graceMs`) for those under way. */
  close(graceMs?: number): Promise<void>;
}

/** Serves the handler on `port` (0: any free one). */
export async function startWorkerServer(handler: RequestHandler, options: { port: number; host?: string }): Promise<WorkerServer> {
  const server = createServer(handler);
  // Dispatch deadlines reach 30 minutes: never cut a slice off at node's default request timeout.
  server.requestTimeout = 0;
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
