import type { CloudTasksClient } from '@google-cloud/tasks';
import { DsMigrateError, errorMessage } from '../../errors';
import { GrpcCode, grpcCode } from '../../datastore';

/** The calls this package makes; the real client satisfies it, and tests may pass a fake. */
export type TasksApi = Pick<CloudTasksClient, 'getQueue' | 'createQueue' | 'createTask' | 'close'>;

/**
 * A client for Cloud Tasks, or for an emulator at `host:port`. For the emulator the insecure channel
 * credentials must come from google-gax's own grpc export (the client rejects another copy's), and the
 * universe domain is given so that the client does not ask a metadata server for it.
 */
export function createTasksClient(emulatorHost?: string): CloudTasksClient {
  const { tasks, grpc } = loadTasks();
  const { CloudTasksClient } = tasks;
  if (!emulatorHost) return new CloudTasksClient();
  const colon = emulatorHost.lastIndexOf(':');
  const port = Number(emulatorHost.slice(colon + 1));
  if (colon <= 0 || !Number.isInteger(port) || port <= 0) {
    throw new DsMigrateError('BAD_INPUT', `CLOUD_TASKS_EMULATOR_HOST must be host:port, not "${emulatorHost}".`);
  }
  return new CloudTasksClient({
    servicePath: emulatorHost.slice(0, colon).replace(/^\[(.*)\]$/, '$1'),
    port,
    sslCreds: grpc.credentials.createInsecure(),
    clientOptions: { universeDomain: 'googleapis.com' },
  });
}

/** The client library and the gax under it, loaded on first use: most runs never dispatch a task, and they add a quarter of a second to every start. */
function loadTasks(): { tasks: typeof import('@google-cloud/tasks'); grpc: typeof import('google-gax').grpc } {
  /* eslint-disable @typescript-eslint/no-require-imports */
  return { tasks: require('@google-cloud/tasks') as typeof import('@google-cloud/tasks'), grpc: (require('google-gax') as typeof import('google-gax')).grpc };
  /* eslint-enable @typescript-eslint/no-require-imports */
}

/** Turns a failed Cloud Tasks call into an error that says what to grant or fix. */
export function cloudTasksError(action: string, resource: string, error: unknown, hint?: string): DsMigrateError {
  const code = grpcCode(error);
  const detail = errorMessage(error);
  let advice = hint ?? '';
  if (code === GrpcCode.PERMISSION_DENIED) {
    advice = hint ?? 'Grant the account running this the Cloud Tasks Enqueuer role (roles/cloudtasks.enqueuer), and check that the Cloud Tasks API is enabled.';
  } else if (code === GrpcCode.UNAUTHENTICATED) {
    advice = 'No usable Google credentials: run `gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS.';
  }
  return new DsMigrateError('CLOUD_TASKS', `Cannot ${action} ${resource}: ${detail}${advice ? `. ${advice}` : ''}`, { resource, grpcCode: code }, { cause: error });
}
