import { randomBytes } from 'node:crypto';
import { invalidArgument } from './errors';

/** Resource names, as Cloud Tasks spells them. Project and location are accepted as given. */
const LOCATION = /^projects\/([^/]+)\/locations\/([^/]+)$/;
const QUEUE = /^(projects\/[^/]+\/locations\/[^/]+)\/queues\/([^/]+)$/;
const TASK = /^(projects\/[^/]+\/locations\/[^/]+\/queues\/[^/]+)\/tasks\/([^/]+)$/;
// Cloud Tasks' documented ID alphabets and lengths.
const QUEUE_ID = /^[A-Za-z0-9-]{1,100}$/;
const TASK_ID = /^[A-Za-z0-9_-]{1,500}$/;

export function checkLocationName(name: string | undefined): string {
  if (!name || !LOCATION.test(name)) {
    throw invalidArgument(`Invalid parent "${name ?? ''}": expected projects/PROJECT_ID/locations/LOCATION_ID`);
  }
  return name;
}

export interface QueueName {
  name: string;
  parent: string;
  queueId: string;
}

export function parseQueueName(name: string | undefined): QueueName {
  const match = name ? QUEUE.exec(name) : null;
  if (!name || !match) {
    throw invalidArgument(`Invalid queue name "${name ?? ''}": expected projects/PROJECT_ID/locations/LOCATION_ID/queues/QUEUE_ID`);
  }
  const [, parent = '', queueId = ''] = match;
  if (!QUEUE_ID.test(queueId)) {
    throw invalidArgument(`Invalid queue ID "${queueId}": use 1-100 letters, digits or hyphens`);
  }
  return { name, parent, queueId };
}

export interface TaskName {
  name: string;
  queueName: string;
  taskId: string;
}

export function parseTaskName(name: string | undefined): TaskName {
  const match = name ? TASK.exec(name) : null;
  if (!name || !match) {
    throw invalidArgument(`Invalid task name "${name ?? ''}": expected projects/PROJECT_ID/locations/LOCATION_ID/queues/QUEUE_ID/tasks/TASK_ID`);
  }
  const [, queueName = '', taskId = ''] = match;
  parseQueueName(queueName);
  if (!TASK_ID.test(taskId)) {
    throw invalidArgument(`Invalid task ID "${taskId}": use 1-500 letters, digits, hyphens or underscores`);
  }
  return { name, queueName, taskId };
}

/** The last segment of a resource name: what the X-CloudTasks-* headers carry. */
export const shortName = (name: string): string => name.slice(name.lastIndexOf('/') + 1);

/** A decimal ID like the ones Cloud Tasks generates; 64 random bits make collisions negligible. */
export const generateTaskId = (): string => randomBytes(8).readBigUInt64BE().toString();
