import { Server, ServerCredentials } from '@grpc/grpc-js';
import { AttemptRunner } from './attempts';
import { Deliverer } from './deliverer';
import { FaultInjector, seededRandom, type FaultOptions } from './faults';
import { cloudTasksImplementation } from './grpc-service';
import type { CloudTasksEmulatorOptions } from './options';
import { cloudTasksService } from './proto';
import { QueueApi } from './queue-api';
import { Scheduler } from './scheduler';
import { emptyStats, type EmulatorStats } from './stats';
import { Store } from './store';
import { TaskApi } from './task-api';
import { DISPATCH_DEADLINE_RANGE } from './task-input';
import { fakeAccessToken, unsignedOidcToken } from './tokens';

export interface CloudTasksEmulator {
  /** `hostname:port`: the value for CLOUD_TASKS_EMULATOR_HOST (same shape as the Datastore emulator's `host`). */
  readonly host: string;
  readonly hostname: string;
  readonly port: number;
  /** Closes the gRPC server, cancels timers and aborts requests in flight. Idempotent. */
  stop(): Promise<void>;
  /** A copy of the counters. */
  stats(): EmulatorStats;
  /**
   * Resolves when no task is waiting or being dispatched and no duplicate delivery is pending, in
   * `queue` (a full queue name) or in every queue. Tasks in a paused queue keep it busy; after
   * `timeoutMs` (default 30 s) it rejects with what is still pending.
   */
  idle(options?: IdleOptions): Promise<void>;
  /** Changes fault injection from now on; `seed` restarts the random sequence. */
  setFaults(faults: FaultOptions & { seed?: number }): void;
  faults(): Required<FaultOptions>;
  /** Forgets every queue, task, tombstone and counter; deliveries under way finish without being counted. */
  reset(): void;
}

export type { EmulatorStats };

export interface IdleOptions {
  queue?: string;
  timeoutMs?: number;
}

export async function startCloudTasksEmulator(options: CloudTasksEmulatorOptions = {}): Promise<CloudTasksEmulator> {
  checkOptions(options);
  const hostname = options.hostname ?? '127.0.0.1';
  const log = options.log ?? ((): void => undefined);
  const onError = (error: unknown): void => console.error('[cloud-tasks-emulator]', error);
  const random = options.random ?? (options.seed !== undefined ? seededRandom(options.seed) : Math.random);

  const store = new Store(options.tombstoneMs ?? 3_600_000);
  const stats = emptyStats();
  const faults = new FaultInjector(options, random);
  const deliverer = new Deliverer(() => faults.latencyMs);
  const runner = new AttemptRunner({
    store,
    deliverer,
    faults,
    stats,
    tokens: { oidcTokenFor: options.oidcTokenFor ?? unsignedOidcToken, oauthTokenFor: options.oauthTokenFor ?? fakeAccessToken },
    log,
  });
  const scheduler = new Scheduler(store, runner, onError);
  const queues = new QueueApi(store, scheduler);
  const tasks = new TaskApi(store, scheduler, options.dispatchDeadlineRange ?? DISPATCH_DEADLINE_RANGE);

  const server = new Server();
  server.addService(cloudTasksService(), cloudTasksImplementation(queues, tasks, onError));
  const address = hostname.includes(':') ? `[${hostname}]` : hostname;
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${address}:${options.port ?? 0}`, ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );

  const describePending = (queueName?: string): string => {
    const parts = [...store.allQueues()]
      .filter((q) => q.pending > 0 && (queueName === undefined || q.name === queueName))
      .map((q) => `${q.pending} pending in ${q.name}${q.state === 'RUNNING' ? '' : ` (${q.state.toLowerCase()})`}`);
    const inFlight = queueName === undefined ? scheduler.deliveriesInFlight : (store.findQueue(queueName)?.inFlight ?? 0);
    if (inFlight > 0) parts.push(`${inFlight} deliveries in flight`);
    return parts.join('; ') || 'nothing (raced)';
  };

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      scheduler.halt();
      deliverer.abortAll();
      await scheduler.drain();
      await shutdown(server);
    })());

  return {
    host: `${address}:${port}`,
    hostname,
    port,
    stop,
    stats: () => ({ ...stats }),
    idle: (idleOptions = {}) => scheduler.idle(idleOptions.queue, idleOptions.timeoutMs ?? 30_000, () => describePending(idleOptions.queue)),
    setFaults: (changes) => faults.update(changes),
    faults: () => faults.current(),
    reset: () => {
      store.reset();
      runner.forgetRunning();
      Object.assign(stats, emptyStats()); // in place: the runner holds this object
      scheduler.poke();
    },
  };
}

function checkOptions(options: CloudTasksEmulatorOptions): void {
  if (options.tombstoneMs !== undefined && !(options.tombstoneMs >= 0)) {
    throw new RangeError(`tombstoneMs must be >= 0, got ${options.tombstoneMs}`);
  }
  const range = options.dispatchDeadlineRange;
  if (range && !(range.minMs > 0 && range.minMs <= range.maxMs)) {
    throw new RangeError(`dispatchDeadlineRange needs 0 < minMs <= maxMs, got ${range.minMs}..${range.maxMs}`);
  }
}

/** Lets calls in progress finish, but not for long: a client that never hangs up must not block stop(). */
function shutdown(server: Server): Promise<void> {
  return new Promise((resolve) => {
    const force = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, 1000);
    server.tryShutdown(() => {
      clearTimeout(force);
      resolve();
    });
  });
}
