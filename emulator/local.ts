import { randomBytes } from 'node:crypto';
import { startCloudTasksEmulator, type CloudTasksEmulator, type CloudTasksEmulatorOptions } from './cloud-tasks';
import { startDatastoreEmulator, type RunningEmulator, type StartOptions } from './datastore-emulator';
import { startDatastoreProxy, type DatastoreProxy, type DatastoreProxyOptions } from './datastore-proxy';

export interface LocalEmulatorsOptions {
  /** The Datastore emulator to start; none when absent. */
  datastore?: StartOptions;
  /** The Cloud Tasks emulator to start; none when absent. */
  tasks?: CloudTasksEmulatorOptions;
  /** A fault and latency proxy to start in front of the Datastore emulator (emulator/datastore-proxy); none when absent. */
  datastoreProxy?: Omit<DatastoreProxyOptions, 'target'>;
  /** The project the printed environment names (the emulators accept any). */
  projectId: string;
  /** The port the app's worker will listen on, for the suggested DSMIGRATE_WORKER_URL. */
  workerPort: number;
}

export interface LocalEmulators {
  readonly datastore?: RunningEmulator;
  readonly tasks?: CloudTasksEmulator;
  /** The proxy in front of `datastore`, where DATASTORE_EMULATOR_HOST points when it runs. */
  readonly datastoreProxy?: DatastoreProxy;
  /** What dsmigrate (the CLI and the worker) and the app need in their environment to use these emulators. */
  readonly environment: Readonly<Record<string, string>>;
  /** Stops both. */
  stop(): Promise<void>;
}

/** The queue the printed environment suggests; the CLI creates it on the first `migrate --executor cloud-tasks`. */
const LOCAL_QUEUE_LOCATION = 'local';
const LOCAL_QUEUE_ID = 'dsmigrate';

/**
 * Starts what `dsmigrate emulator` (and `npm run emulator`) runs: a Datastore emulator and the
 * Cloud Tasks emulator, either or both, and says how to point dsmigrate and a worker at them.
 */
export async function startLocalEmulators(options: LocalEmulatorsOptions): Promise<LocalEmulators> {
  const datastore = options.datastore ? await startDatastoreEmulator(options.datastore) : undefined;
  let datastoreProxy: DatastoreProxy | undefined;
  let tasks: CloudTasksEmulator | undefined;
  try {
    datastoreProxy = datastore && options.datastoreProxy ? await startDatastoreProxy({ ...options.datastoreProxy, target: datastore.host }) : undefined;
    tasks = options.tasks ? await startCloudTasksEmulator(options.tasks) : undefined;
  } catch (error) {
    // A Datastore emulator left running would outlive this process (it is a Java process group of its own).
    await Promise.all([datastoreProxy?.stop(), datastore?.stop()]);
    throw error;
  }
  const environment: Record<string, string> = {};
  if (datastore) {
    environment.DATASTORE_EMULATOR_HOST = datastoreProxy?.host ?? datastore.host;
    environment.DATASTORE_PROJECT_ID = options.projectId;
  }
  if (tasks) {
    environment.CLOUD_TASKS_EMULATOR_HOST = tasks.host;
    environment.DSMIGRATE_TASKS_QUEUE = `projects/${options.projectId}/locations/${LOCAL_QUEUE_LOCATION}/queues/${LOCAL_QUEUE_ID}`;
    environment.DSMIGRATE_WORKER_URL = `http://127.0.0.1:${options.workerPort}/`;
    // The emulator cannot sign Google's OIDC tokens: tasks and worker authenticate with a shared secret, new for every start.
    environment.DSMIGRATE_WORKER_SECRET = randomBytes(24).toString('hex');
  }
  return {
    datastore,
    tasks,
    datastoreProxy,
    environment,
    async stop() {
      await Promise.all([datastoreProxy?.stop(), datastore?.stop(), tasks?.stop()]);
    },
  };
}
