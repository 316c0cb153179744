import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request as the target saw it. */
export interface ReceivedRequest {
  method: string;
  /** Path and query. */
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
  receivedAt: number;
  /** X-CloudTasks-TaskName and X-CloudTasks-TaskRetryCount, for convenience. */
  taskId: string;
  retryCount: number;
  /** Resolves when the emulator hangs up before we answered (deadline, stop()). */
  abandoned: Promise<void>;
}

/** Decides the response status; may take its time (a slow handler). */
export type Responder = (request: ReceivedRequest) => number | Promise<number>;

/** A real HTTP server for the emulator to dispatch to, recording every request. */
export class TargetServer {
  readonly requests: ReceivedRequest[] = [];
  inFlight = 0;
  maxInFlight = 0;
  private responder: Responder = () => 200;
  private listeners: Array<() => void> = [];

  private constructor(private readonly server: http.Server) {}

  static async start(): Promise<TargetServer> {
    const server = http.createServer();
    const target = new TargetServer(server);
    server.on('request', (req, res) => target.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return target;
  }

  url(path = '/task'): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}${path}`;
  }

  respondWith(responder: Responder): void {
    this.responder = responder;
  }

  /** Resolves once at least `count` requests arrived. */
  waitForRequests(count: number, timeoutMs = 15_000): Promise<ReceivedRequest[]> {
    return this.waitUntil(() => this.requests.length >= count, `${count} requests (got ${this.requests.length})`, timeoutMs).then(() => this.requests);
  }

  /** Resolves once `condition` holds; re-checked on every request and every response. */
  waitUntil(condition: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.listeners = this.listeners.filter((l) => l !== check);
        reject(new Error(`target server: timed out waiting for ${what}`));
      }, timeoutMs);
      const check = (): void => {
        if (!condition()) return;
        clearTimeout(timer);
        this.listeners = this.listeners.filter((l) => l !== check);
        resolve();
      };
      this.listeners.push(check);
    });
  }

  requestsFor(taskId: string): ReceivedRequest[] {
    return this.requests.filter((r) => r.taskId === taskId);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const abandoned = new Promise<void>((resolve) => res.on('close', () => (res.writableFinished ? undefined : resolve())));
      const request: ReceivedRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        receivedAt: Date.now(),
        taskId: String(req.headers['x-cloudtasks-taskname'] ?? ''),
        retryCount: Number(req.headers['x-cloudtasks-taskretrycount'] ?? -1),
        abandoned,
      };
      this.requests.push(request);
      this.inFlight += 1;
      this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
      res.on('close', () => {
        this.inFlight -= 1;
        this.notify();
      });
      this.notify();
      Promise.resolve(this.responder(request)).then(
        (status) => {
          if (!res.destroyed) res.writeHead(status).end();
        },
        () => res.destroy(),
      );
    });
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener();
  }
}
