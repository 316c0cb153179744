import { invalidArgument, unimplemented } from './errors';
import type { HttpTarget, TaskAuth } from './model';
import { timestampToMs, durationToMs } from './time';
import type { HttpMethodName, WireHttpRequest, WireTask } from './wire';

/** Validation of a task as CreateTask receives it, with Cloud Tasks' limits. */

export interface DeadlineRange {
  minMs: number;
  maxMs: number;
}
export const DEFAULT_DISPATCH_DEADLINE_MS = 10 * 60_000;
export const DISPATCH_DEADLINE_RANGE: DeadlineRange = { minMs: 15_000, maxMs: 30 * 60_000 };
const MAX_SCHEDULE_AHEAD_MS = 30 * 24 * 3600_000;
const MAX_URL_LENGTH = 2083;
const MAX_TASK_BYTES = 1024 * 1024;
const METHODS: readonly HttpMethodName[] = ['POST', 'GET', 'HEAD', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'];
const METHODS_WITH_BODY: readonly HttpMethodName[] = ['POST', 'PUT', 'PATCH'];
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const DEFAULT_OAUTH_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';

function httpMethod(value: WireHttpRequest['httpMethod']): HttpMethodName {
  if (value === undefined || value === 'HTTP_METHOD_UNSPECIFIED' || value === 0) return 'POST';
  const method = METHODS.find((m) => m === value);
  if (!method) throw invalidArgument(`Unsupported http_method ${String(value)}`);
  return method;
}

function checkUrl(raw: string | undefined): string {
  if (!raw) throw invalidArgument('task.http_request.url is required');
  if (raw.length > MAX_URL_LENGTH) throw invalidArgument(`task.http_request.url is longer than ${MAX_URL_LENGTH} characters`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalidArgument(`task.http_request.url "${raw}" is not a valid URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw invalidArgument(`task.http_request.url must start with http:// or https://, got "${raw}"`);
  }
  return raw;
}

function checkHeaders(headers: Record<string, string> | undefined): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (!HEADER_NAME.test(name)) throw invalidArgument(`Invalid HTTP header name "${name}"`);
    if (/[\r\n\0]/.test(value)) throw invalidArgument(`Invalid value for HTTP header "${name}"`);
    result[name] = value;
  }
  return result;
}

function authOf(http: WireHttpRequest, url: string): TaskAuth | undefined {
  if (http.oidcToken) {
    const email = http.oidcToken.serviceAccountEmail;
    if (!email) throw invalidArgument('task.http_request.oidc_token.service_account_email is required');
    // The documented default audience is the target URL.
    return { kind: 'oidc', serviceAccountEmail: email, audience: http.oidcToken.audience || url };
  }
  if (http.oauthToken) {
    const email = http.oauthToken.serviceAccountEmail;
    if (!email) throw invalidArgument('task.http_request.oauth_token.service_account_email is required');
    return { kind: 'oauth', serviceAccountEmail: email, scope: http.oauthToken.scope || DEFAULT_OAUTH_SCOPE };
  }
  return undefined;
}

export function httpTargetOf(task: WireTask): HttpTarget {
  if (task.appEngineHttpRequest) {
    throw unimplemented('App Engine tasks (app_engine_http_request) are not supported by the emulator; use http_request');
  }
  const http = task.httpRequest;
  if (!http) throw invalidArgument('task.http_request is required');
  const url = checkUrl(http.url);
  const method = httpMethod(http.httpMethod);
  const body = http.body ?? Buffer.alloc(0);
  if (body.length > 0 && !METHODS_WITH_BODY.includes(method)) {
    throw invalidArgument(`A body is only allowed with POST, PUT or PATCH, not ${method}`);
  }
  const headers = checkHeaders(http.headers);
  const size = body.length + url.length + Object.entries(headers).reduce((n, [k, v]) => n + k.length + v.length, 0);
  if (size > MAX_TASK_BYTES) throw invalidArgument(`Task size ${size} bytes exceeds the 1 MiB limit`);
  const target: HttpTarget = { url, method, headers, body };
  const auth = authOf(http, url);
  if (auth) target.auth = auth;
  return target;
}

/** A past or missing schedule time means "now"; more than 30 days ahead is refused. */
export function scheduleTimeOf(task: WireTask, now: number): number {
  const requested = timestampToMs(task.scheduleTime, 'task.schedule_time');
  if (requested === undefined || requested < now) return now;
  if (requested > now + MAX_SCHEDULE_AHEAD_MS) throw invalidArgument('task.schedule_time must be at most 30 days in the future');
  return requested;
}

export function dispatchDeadlineOf(task: WireTask, range: DeadlineRange): number {
  const requested = durationToMs(task.dispatchDeadline, 'task.dispatch_deadline');
  if (requested === undefined || requested === 0) return DEFAULT_DISPATCH_DEADLINE_MS;
  if (requested < range.minMs || requested > range.maxMs) {
    throw invalidArgument(`task.dispatch_deadline must be between ${range.minMs / 1000}s and ${range.maxMs / 1000}s, got ${requested / 1000}s`);
  }
  return requested;
}
