import type { protos } from '@google-cloud/tasks';
import { GrpcCode, grpcCode, withRetry } from '../../datastore';
import { SIGNATURE_HEADER, signBody } from './hmac';
import { encodePayload, type TaskPayload } from './payload';
import type { DispatchAuth } from './settings';
import { taskIdFor } from './task-name';
import { cloudTasksError, type TasksApi } from './tasks-api';

/** Where and how tasks go: a queue, the worker's URL, and the credentials the worker will check. */
export interface DispatchTarget {
  /** Full queue name. */
  queue: string;
  url: string;
  auth: DispatchAuth;
  dispatchDeadlineMs: number;
}

export type EnqueueOutcome = 'created' | 'exists';

/**
 * Sends a run's steps as Cloud Tasks: each step becomes one HTTP task to the worker, named
 * after what it does (task-name.ts), so that enqueuing a step twice creates it once.
 */
export class TaskDispatcher {
  constructor(
    private readonly api: TasksApi,
    private readonly target: DispatchTarget,
  ) {}

  get queue(): string {
    return this.target.queue;
  }

  /**
   * `exists` when the name is taken, by a task still queued or by one that ran or was deleted in the
   * last hour or so: the step is already under way or done, which for us is success.
   */
  async enqueue(payload: TaskPayload): Promise<EnqueueOutcome> {
    const task = this.task(payload);
    try {
      // A named task makes a retried create safe: if the first reached the server, the retry hits ALREADY_EXISTS.
      await withRetry(() => this.api.createTask({ parent: this.target.queue, task }), { attempts: 5, baseDelayMs: 200 });
      return 'created';
    } catch (error) {
      if (grpcCode(error) === GrpcCode.ALREADY_EXISTS) return 'exists';
      throw cloudTasksError(
        'create a task in',
        this.target.queue,
        error,
        grpcCode(error) === GrpcCode.PERMISSION_DENIED && this.target.auth.kind === 'oidc'
          ? `Grant the Cloud Tasks Enqueuer role (roles/cloudtasks.enqueuer) on the queue, and the Service Account User role (roles/iam.serviceAccountUser) on ${this.target.auth.serviceAccountEmail} so that tasks may carry its tokens.`
          : undefined,
      );
    }
  }

  /** The task's full name, for logs and tests. */
  taskName(payload: TaskPayload): string {
    return `${this.target.queue}/tasks/${taskIdFor(payload)}`;
  }

  private task(payload: TaskPayload): protos.google.cloud.tasks.v2.ITask {
    const body = encodePayload(payload);
    const headers: Record<string, string> = { 'Content-Type': 'application/json' };
    const { auth } = this.target;
    // Signed when the task is created: its headers are the same on every attempt.
    if (auth.kind === 'hmac') headers[SIGNATURE_HEADER] = signBody(auth.secret, body);
    const deadline = Math.round(this.target.dispatchDeadlineMs / 1000);
    return {
      name: this.taskName(payload),
      dispatchDeadline: { seconds: deadline },
      httpRequest: {
        url: this.target.url,
        httpMethod: 'POST',
        headers,
        body,
        ...(auth.kind === 'oidc' ? { oidcToken: { serviceAccountEmail: auth.serviceAccountEmail, audience: auth.audience } } : {}),
      },
    };
  }
}
