import type { Attempt, TaskRecord } from './model';
import type { Queue } from './queue';
import { msToDuration, msToTimestamp } from './time';
import type { TaskViewName, WireAttempt, WireEnum, WireHttpRequest, WireQueue, WireTask } from './wire';

/** Internal records to the messages the API returns. */

export function queueToWire(queue: Queue): WireQueue {
  const { rateLimits, retryConfig, appEngineRoutingOverride, stackdriverLoggingConfig } = queue.settings;
  const wire: WireQueue = {
    name: queue.name,
    state: queue.state,
    rateLimits: { ...rateLimits },
    retryConfig: {
      maxAttempts: retryConfig.maxAttempts,
      maxRetryDuration: msToDuration(retryConfig.maxRetryDurationMs),
      minBackoff: msToDuration(retryConfig.minBackoffMs),
      maxBackoff: msToDuration(retryConfig.maxBackoffMs),
      maxDoublings: retryConfig.maxDoublings,
    },
  };
  if (queue.purgeTime !== undefined) wire.purgeTime = msToTimestamp(queue.purgeTime);
  if (appEngineRoutingOverride) wire.appEngineRoutingOverride = { ...appEngineRoutingOverride };
  if (stackdriverLoggingConfig) wire.stackdriverLoggingConfig = { ...stackdriverLoggingConfig };
  return wire;
}

/** BASIC (the default) leaves out the body, which can be large or sensitive; FULL includes it. */
export type TaskView = 'BASIC' | 'FULL';

export const taskView = (requested: WireEnum<TaskViewName> | undefined): TaskView => (requested === 'FULL' ? 'FULL' : 'BASIC');

function attemptToWire(attempt: Attempt): WireAttempt {
  const wire: WireAttempt = {
    scheduleTime: msToTimestamp(attempt.scheduleTime),
    dispatchTime: msToTimestamp(attempt.dispatchTime),
  };
  if (attempt.responseTime !== undefined) wire.responseTime = msToTimestamp(attempt.responseTime);
  if (attempt.responseStatus) wire.responseStatus = { ...attempt.responseStatus };
  return wire;
}

export function taskToWire(task: TaskRecord, view: TaskView): WireTask {
  const { target } = task;
  const httpRequest: WireHttpRequest = { url: target.url, httpMethod: target.method, headers: { ...target.headers } };
  if (view === 'FULL' && target.body.length > 0) httpRequest.body = target.body;
  if (target.auth?.kind === 'oidc') {
    httpRequest.oidcToken = { serviceAccountEmail: target.auth.serviceAccountEmail, audience: target.auth.audience };
  } else if (target.auth?.kind === 'oauth') {
    httpRequest.oauthToken = { serviceAccountEmail: target.auth.serviceAccountEmail, scope: target.auth.scope };
  }
  const wire: WireTask = {
    name: task.name,
    httpRequest,
    scheduleTime: msToTimestamp(task.scheduleTime),
    createTime: msToTimestamp(task.createTime),
    dispatchDeadline: msToDuration(task.dispatchDeadlineMs),
    dispatchCount: task.dispatchCount,
    responseCount: task.responseCount,
    view,
  };
  // Like Cloud Tasks, only the dispatch time of the first attempt is kept.
  if (task.firstAttempt) wire.firstAttempt = { dispatchTime: msToTimestamp(task.firstAttempt.dispatchTime) };
  if (task.lastAttempt) wire.lastAttempt = attemptToWire(task.lastAttempt);
  return wire;
}
