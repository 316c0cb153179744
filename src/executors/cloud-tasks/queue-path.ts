import { DsMigrateError } from '../../errors';

/** A queue's full name, `projects/P/locations/L/queues/Q`, and its parts. */
export interface QueuePath {
  readonly name: string;
  readonly project: string;
  readonly location: string;
  readonly queue: string;
}

// Cloud Tasks' own rules for the three ids (QUEUE_ID: letters, digits and hyphens, at most 100).
const QUEUE_NAME = /^projects\/([A-Za-z0-9:.-]+)\/locations\/([A-Za-z0-9-]+)\/queues\/([A-Za-z0-9-]{1,100})$/;

export function parseQueuePath(value: string): QueuePath {
  const match = QUEUE_NAME.exec(value.trim());
  if (!match) {
    throw new DsMigrateError('BAD_INPUT', `Cloud Tasks queue "${value}" must be a full name: projects/PROJECT/locations/LOCATION/queues/QUEUE.`, { queue: value });
  }
  const [name, project, location, queue] = match;
  return { name, project, location, queue };
}
