import { createConnection, createServer, type Server as NetServer, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  Client,
  credentials,
  Metadata,
  Server,
  ServerCredentials,
  status,
  type ConnectionInjector,
  type sendUnaryData,
  type ServerUnaryCall,
  type ServiceDefinition,
  type ServiceError,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { commitWrites, type WrittenKey } from './commit-keys';
import { Counter, type ProxyCounts } from './counts';
import { FaultChooser } from './faults';
import { HotDocuments, type HotDocument } from './hot-documents';
import { checkOptions, DATASTORE_METHODS, type DatastoreMethod, type DatastoreProxyOptions, type FaultCode } from './options';

/** What the proxy prints on exit. */
export interface DatastoreProxyReport {
  counts: ProxyCounts;
  hotDocuments: HotDocument[];
}

export interface DatastoreProxy {
  /** `host:port` of the proxy: the value for DATASTORE_EMULATOR_HOST. */
  readonly host: string;
  readonly port: number;
  /** The emulator behind it. */
  readonly target: string;
  counts(): ProxyCounts;
  hotDocuments(): HotDocument[];
  report(): DatastoreProxyReport;
  stop(): Promise<void>;
}

const SERVICE = 'google.datastore.v1.Datastore';
/** The emulators take requests of up to 10 MiB (production more) and lookups answer with up to 1,000 entities: no 4 MiB default here. */
const UNLIMITED = { 'grpc.max_receive_message_length': -1, 'grpc.max_send_message_length': -1 };
/** The first bytes of every HTTP/2 connection (RFC 9113 §3.4): gRPC. Anything else is HTTP/1, passed through. */
const HTTP2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

const identity = (bytes: Buffer): Buffer => bytes;

/** Every method forwarded as bytes: the proxy decodes only the commits' keys (commit-keys.ts). */
function serviceDefinition(): ServiceDefinition {
  return Object.fromEntries(
    DATASTORE_METHODS.map((method) => [
      method,
      {
        path: `/${SERVICE}/${method}`,
        requestStream: false,
        responseStream: false,
        requestSerialize: identity,
        requestDeserialize: identity,
        responseSerialize: identity,
        responseDeserialize: identity,
      },
    ]),
  );
}

const FAULT_STATUS: Record<FaultCode, { code: status; details: string }> = {
  aborted: { code: status.ABORTED, details: 'Aborted due to cross-transaction contention. This occurs when multiple transactions attempt to access the same data.' },
  unavailable: { code: status.UNAVAILABLE, details: 'The service is currently unavailable.' },
  'resource-exhausted': { code: status.RESOURCE_EXHAUSTED, details: 'Quota exceeded or too many requests.' },
  'deadline-exceeded': { code: status.DEADLINE_EXCEEDED, details: 'Deadline exceeded.' },
  'deadline-after-commit': { code: status.DEADLINE_EXCEEDED, details: 'Deadline exceeded.' },
  'unavailable-after-commit': { code: status.UNAVAILABLE, details: 'The service is currently unavailable.' },
};

const AFTER_COMMIT: ReadonlySet<FaultCode> = new Set(['deadline-after-commit', 'unavailable-after-commit']);

/** A status the server answers with; `details` says the proxy made it, for whoever reads a log. */
function fault(code: FaultCode, method: DatastoreMethod): Partial<ServiceError> {
  const { code: grpcCode, details } = FAULT_STATUS[code];
  const when = AFTER_COMMIT.has(code) ? 'after the emulator applied the commit' : 'before the request reached the emulator';
  return { code: grpcCode, details: `${details} (${code} injected into ${method} by the dsmigrate Datastore proxy, ${when})`, metadata: new Metadata() };
}

/**
 * A gRPC proxy in front of a Datastore emulator that makes it behave more like production: RPCs take
 * time (`latencyMs`), fail as production's do (`faultFraction`, `faultShares`), and an entity written
 * too often is reported, or its writes refused (`hotLimit`). Requests and answers are forwarded as
 * bytes; HTTP/1 requests (the emulators' health check on `/`, `/reset`, a REST client) are passed
 * through unchanged, without faults.
 */
export async function startDatastoreProxy(options: DatastoreProxyOptions): Promise<DatastoreProxy> {
  checkOptions(options);
  const chooser = new FaultChooser(options);
  const counter = new Counter();
  const hot = new HotDocuments({ windowSeconds: options.hotWindowSeconds ?? 10, ratePerSecond: options.hotRatePerSecond ?? 1, limit: options.hotLimit });
  const upstream = new Client(options.target, credentials.createInsecure(), UNLIMITED);
  const [targetHost, targetPort] = splitHost(options.target);

  function forward(method: DatastoreMethod, call: ServerUnaryCall<Buffer, Buffer>): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const upstreamCall = upstream.makeUnaryRequest(`/${SERVICE}/${method}`, identity, identity, call.request, call.metadata.clone(), { deadline: call.getDeadline() }, (error, response) =>
        error || !response ? reject(error ?? { code: status.INTERNAL, details: 'no response' }) : resolve(response),
      );
      call.once('cancelled', () => upstreamCall.cancel());
    });
  }

  /** The writes a commit may forward; throws ABORTED when one of its entities is over the hot limit. */
  function admitCommit(request: Buffer): void {
    const writes: WrittenKey[] = commitWrites(request);
    const now = Date.now();
    const over = hot.overLimit(writes, now);
    if (over) {
      hot.refuse(writes, now);
      counter.injected('Commit', 'hot-limit');
      throw {
        code: status.ABORTED,
        details: `Too much contention on these datastore entities. please try again. entity: ${over.kind} ${over.path} (over --hot-limit ${options.hotLimit} writes a second; dsmigrate Datastore proxy)`,
        metadata: new Metadata(),
      };
    }
    hot.record(writes, now);
  }

  async function handle(method: DatastoreMethod, call: ServerUnaryCall<Buffer, Buffer>): Promise<Buffer> {
    counter.received(method);
    const fate = chooser.choose(method);
    if (fate.delayMs > 0) await sleep(fate.delayMs);
    if (fate.fault && !AFTER_COMMIT.has(fate.fault)) {
      counter.injected(method, fate.fault);
      throw fault(fate.fault, method);
    }
    if (method === 'Commit') admitCommit(call.request);
    const response = await forward(method, call);
    if (fate.fault) {
      // Applied, but the client hears it failed: what a lost answer looks like from production.
      counter.injected(method, fate.fault);
      throw fault(fate.fault, method);
    }
    return response;
  }

  const implementation: UntypedServiceImplementation = Object.fromEntries(
    DATASTORE_METHODS.map((method) => [
      method,
      (call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) => {
        handle(method, call).then(
          (response) => callback(null, response),
          (error: Partial<ServiceError>) => callback(error),
        );
      },
    ]),
  );
  const grpcServer = new Server(UNLIMITED);
  grpcServer.addService(serviceDefinition(), implementation);
  const injector: ConnectionInjector = grpcServer.createConnectionInjector(ServerCredentials.createInsecure());

  const sockets = new Set<Socket>();
  const front: NetServer = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    route(socket, Buffer.alloc(0));
  });

  /** Reads enough of a connection's first bytes to tell gRPC (HTTP/2) from HTTP/1, then hands it on. */
  function route(socket: Socket, seen: Buffer): void {
    socket.once('data', (chunk: Buffer) => {
      const head = Buffer.concat([seen, chunk]);
      const compared = Math.min(head.length, HTTP2_PREFACE.length);
      const http2 = head.subarray(0, compared).equals(HTTP2_PREFACE.subarray(0, compared));
      if (http2 && head.length < HTTP2_PREFACE.length) return route(socket, head);
      socket.pause();
      socket.unshift(head);
      if (http2) injector.injectConnection(socket);
      else passThrough(socket);
    });
  }

  function passThrough(socket: Socket): void {
    const emulator = createConnection({ host: targetHost, port: targetPort });
    sockets.add(emulator);
    emulator.once('close', () => sockets.delete(emulator));
    emulator.on('error', () => socket.destroy());
    socket.once('close', () => emulator.destroy());
    emulator.once('close', () => socket.destroy());
    socket.pipe(emulator).pipe(socket);
    socket.resume();
  }

  const hostname = options.hostname ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    front.once('error', reject);
    front.listen(options.port ?? 0, hostname, () => {
      front.off('error', reject);
      resolve();
    });
  });
  const address = front.address();
  if (!address || typeof address === 'string') throw new Error('the Datastore proxy has no TCP address');

  return {
    host: `${hostname}:${address.port}`,
    port: address.port,
    target: options.target,
    counts: () => counter.snapshot(),
    hotDocuments: () => hot.report(),
    report: () => ({ counts: counter.snapshot(), hotDocuments: hot.report() }),
    async stop() {
      const closed = new Promise<void>((resolve) => front.close(() => resolve()));
      injector.destroy();
      grpcServer.forceShutdown();
      for (const socket of sockets) socket.destroy();
      upstream.close();
      await closed;
    },
  };
}

function splitHost(host: string): [string, number] {
  const i = host.lastIndexOf(':');
  const port = Number(host.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port)) throw new RangeError(`The Datastore proxy's target must be host:port, got ${JSON.stringify(host)}.`);
  return [host.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port];
}
