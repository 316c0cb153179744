import type { protos } from '@google-cloud/tasks';
import { GrpcCode, grpcCode } from '../../datastore';
import { DsMigrateError } from '../../errors';
import type { QueuePath } from './queue-path';
import { cloudTasksError, type TasksApi } from './tasks-api';

/** The settings a queue is created with. */
export interface QueueSettings {
  /** At most 500 in Cloud Tasks. */
  maxDispatchesPerSecond: number;
  /** Slices running at once, so the worker and Datastore are not flooded. */
  maxConcurrentDispatches: number;
  /** -1 for unlimited. A task that runs out of attempts stalls its shard until the run's lease lapses. */
  maxAttempts: number;
  minBackoffSeconds: number;
  maxBackoffSeconds: number;
  maxDoublings: number;
}

/**
 * Shards are few (tens) and each has one task at a time, so the rate limits rarely bind; they cap a
 * burst. Retries back off from 1 s to 5 min: a worker being redeployed or a Datastore hiccup heals
 * within the attempts, and 100 attempts at that pace span about eight hours.
 */
export const DEFAULT_QUEUE_SETTINGS: QueueSettings = {
  maxDispatchesPerSecond: 500,
  maxConcurrentDispatches: 100,
  maxAttempts: 100,
  minBackoffSeconds: 1,
  maxBackoffSeconds: 300,
  maxDoublings: 5,
};

function duration(seconds: number): protos.google.protobuf.IDuration {
  const whole = Math.floor(seconds);
  return { seconds: whole, nanos: Math.round((seconds - whole) * 1e9) };
}

export function queueResource(queue: QueuePath, settings: QueueSettings): protos.google.cloud.tasks.v2.IQueue {
  return {
    name: queue.name,
    rateLimits: { maxDispatchesPerSecond: settings.maxDispatchesPerSecond, maxConcurrentDispatches: settings.maxConcurrentDispatches },
    retryConfig: {
      maxAttempts: settings.maxAttempts,
      minBackoff: duration(settings.minBackoffSeconds),
      maxBackoff: duration(settings.maxBackoffSeconds),
      maxDoublings: settings.maxDoublings,
    },
  };
}

export interface QueueCheck {
  created: boolean;
  /** Things that will not stop the run but an operator should know. */
  warnings: string[];
}

/**
 * Creates the queue with our settings, or checks the one that exists. An existing queue keeps its
 * settings (an operator may have tuned them); what would hurt a run is reported.
 */
export async function ensureQueue(api: TasksApi, queue: QueuePath, settings: QueueSettings): Promise<QueueCheck> {
  let existing: protos.google.cloud.tasks.v2.IQueue | undefined;
  try {
    [existing] = await api.getQueue({ name: queue.name });
  } catch (error) {
    if (grpcCode(error) !== GrpcCode.NOT_FOUND) {
      throw cloudTasksError(
        'read queue',
        queue.name,
        error,
        grpcCode(error) === GrpcCode.PERMISSION_DENIED
          ? 'Grant the Cloud Tasks Viewer role (roles/cloudtasks.viewer) on the queue, or cloudtasks.queues.get, and check that the Cloud Tasks API is enabled.'
          : undefined,
      );
    }
  }
  if (!existing) {
    try {
      await api.createQueue({ parent: `projects/${queue.project}/locations/${queue.location}`, queue: queueResource(queue, settings) });
      return { created: true, warnings: [] };
    } catch (error) {
      if (grpcCode(error) === GrpcCode.ALREADY_EXISTS) return { created: false, warnings: [] }; // created meanwhile by another run
      throw cloudTasksError(
        'create queue',
        queue.name,
        error,
        grpcCode(error) === GrpcCode.PERMISSION_DENIED
          ? `Create it once with \`gcloud tasks queues create ${queue.queue} --location=${queue.location} --project=${queue.project}\`, or grant the Cloud Tasks Queue Admin role (roles/cloudtasks.queueAdmin).`
          : undefined,
      );
    }
  }
  return { created: false, warnings: checkExisting(queue, existing) };
}

function checkExisting(queue: QueuePath, q: protos.google.cloud.tasks.v2.IQueue): string[] {
  // The client may decode enums as names or as numbers.
  const state = typeof q.state === 'number' ? ['STATE_UNSPECIFIED', 'RUNNING', 'PAUSED', 'DISABLED'][q.state] : String(q.state ?? 'RUNNING');
  if (state === 'DISABLED') throw new DsMigrateError('CLOUD_TASKS', `Queue ${queue.name} is disabled; tasks cannot be added to it.`, { resource: queue.name });
  const warnings: string[] = [];
  if (state === 'PAUSED') warnings.push(`Queue ${queue.name} is paused: tasks wait until \`gcloud tasks queues resume ${queue.queue} --location=${queue.location}\`.`);
  const attempts = Number(q.retryConfig?.maxAttempts ?? -1);
  if (attempts > 0 && attempts < 10) {
    warnings.push(`Queue ${queue.name} gives a task only ${attempts} attempt(s): a task that runs out stalls its shard until the run's lease lapses and the run is restarted.`);
  }
  return warnings;
}
