/**
 * The google.cloud.tasks.v2 messages as @grpc/proto-loader decodes and encodes them with the
 * options in proto.ts (camelCase fields, enums as names, 64-bit integers as strings, bytes as
 * Buffer, unset fields absent). Everything is optional because the wire cannot promise anything.
 */

export interface WireDuration {
  seconds?: string | number;
  nanos?: number;
}
export type WireTimestamp = WireDuration;

export interface WireStatus {
  code?: number;
  message?: string;
}

/** An enum arrives as its name, or as a number when the sender used a value this proto lacks. */
export type WireEnum<Name extends string> = Name | number;

export type HttpMethodName = 'POST' | 'GET' | 'HEAD' | 'PUT' | 'DELETE' | 'PATCH' | 'OPTIONS';
export type WireHttpMethod = WireEnum<'HTTP_METHOD_UNSPECIFIED' | HttpMethodName>;

export interface WireOidcToken {
  serviceAccountEmail?: string;
  audience?: string;
}

export interface WireOAuthToken {
  serviceAccountEmail?: string;
  scope?: string;
}

export interface WireHttpRequest {
  url?: string;
  httpMethod?: WireHttpMethod;
  headers?: Record<string, string>;
  body?: Buffer;
  oauthToken?: WireOAuthToken;
  oidcToken?: WireOidcToken;
}

export interface WireAppEngineRouting {
  service?: string;
  version?: string;
  instance?: string;
  host?: string;
}

export interface WireAppEngineHttpRequest {
  httpMethod?: WireHttpMethod;
  appEngineRouting?: WireAppEngineRouting;
  relativeUri?: string;
  headers?: Record<string, string>;
  body?: Buffer;
}

export interface WireAttempt {
  scheduleTime?: WireTimestamp;
  dispatchTime?: WireTimestamp;
  responseTime?: WireTimestamp;
  responseStatus?: WireStatus;
}

export type TaskViewName = 'VIEW_UNSPECIFIED' | 'BASIC' | 'FULL';

export interface WireTask {
  name?: string;
  appEngineHttpRequest?: WireAppEngineHttpRequest;
  httpRequest?: WireHttpRequest;
  scheduleTime?: WireTimestamp;
  createTime?: WireTimestamp;
  dispatchDeadline?: WireDuration;
  dispatchCount?: number;
  responseCount?: number;
  firstAttempt?: WireAttempt;
  lastAttempt?: WireAttempt;
  view?: WireEnum<TaskViewName>;
}

export type QueueStateName = 'STATE_UNSPECIFIED' | 'RUNNING' | 'PAUSED' | 'DISABLED';

export interface WireRateLimits {
  maxDispatchesPerSecond?: number;
  maxBurstSize?: number;
  maxConcurrentDispatches?: number;
}

export interface WireRetryConfig {
  maxAttempts?: number;
  maxRetryDuration?: WireDuration;
  minBackoff?: WireDuration;
  maxBackoff?: WireDuration;
  maxDoublings?: number;
}

export interface WireStackdriverLoggingConfig {
  samplingRatio?: number;
}

export interface WireQueue {
  name?: string;
  appEngineRoutingOverride?: WireAppEngineRouting;
  rateLimits?: WireRateLimits;
  retryConfig?: WireRetryConfig;
  state?: WireEnum<QueueStateName>;
  purgeTime?: WireTimestamp;
  stackdriverLoggingConfig?: WireStackdriverLoggingConfig;
}

export interface ListQueuesRequest {
  parent?: string;
  filter?: string;
  pageSize?: number;
  pageToken?: string;
}
export interface ListQueuesResponse {
  queues: WireQueue[];
  nextPageToken: string;
}
export interface NameRequest {
  name?: string;
}
export interface CreateQueueRequest {
  parent?: string;
  queue?: WireQueue;
}
export interface UpdateQueueRequest {
  queue?: WireQueue;
  updateMask?: { paths?: string[] };
}
export interface ListTasksRequest {
  parent?: string;
  responseView?: WireEnum<TaskViewName>;
  pageSize?: number;
  pageToken?: string;
}
export interface ListTasksResponse {
  tasks: WireTask[];
  nextPageToken: string;
}
export interface GetTaskRequest {
  name?: string;
  responseView?: WireEnum<TaskViewName>;
}
export interface CreateTaskRequest {
  parent?: string;
  task?: WireTask;
  responseView?: WireEnum<TaskViewName>;
}
export type RunTaskRequest = GetTaskRequest;
export type Empty = Record<string, never>;
