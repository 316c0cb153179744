import type { HttpTarget, PreviousFailure } from './model';
import type { OutgoingRequest } from './outgoing-request';
import type { OAuthTokenFor, OidcTokenFor } from './tokens';

/** What one attempt tells its handler, in the X-CloudTasks-* headers. */
export interface AttemptInfo {
  queueId: string;
  taskId: string;
  /** Attempts before this one, injected failures included. */
  retryCount: number;
  /** Earlier attempts that got a response from the handler. */
  executionCount: number;
  /** The attempt's schedule time, epoch ms. */
  etaMs: number;
  previousFailure?: PreviousFailure;
}

export interface TokenSources {
  oidcTokenFor: OidcTokenFor;
  oauthTokenFor: OAuthTokenFor;
}

/** Headers Cloud Tasks sets or ignores itself, whatever the task says. */
const RESERVED = /^(host|content-length|connection|transfer-encoding|x-google-.*|x-appengine-.*|x-cloudtasks-.*)$/i;

const hasHeader = (headers: Record<string, string>, name: string): boolean => Object.keys(headers).some((key) => key.toLowerCase() === name);

/** The request one attempt sends: the task's own method, URL, headers and body plus what Cloud Tasks adds. */
export function buildDispatchRequest(target: HttpTarget, info: AttemptInfo, tokens: TokenSources): OutgoingRequest {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(target.headers)) {
    if (RESERVED.test(name)) continue;
    if (target.auth && name.toLowerCase() === 'authorization') continue;
    headers[name] = value;
  }
  if (!hasHeader(headers, 'user-agent')) headers['User-Agent'] = 'Google-Cloud-Tasks';
  if (target.body.length > 0 && !hasHeader(headers, 'content-type')) headers['Content-Type'] = 'application/octet-stream';

  headers['X-CloudTasks-QueueName'] = info.queueId;
  headers['X-CloudTasks-TaskName'] = info.taskId;
  headers['X-CloudTasks-TaskRetryCount'] = String(info.retryCount);
  headers['X-CloudTasks-TaskExecutionCount'] = String(info.executionCount);
  headers['X-CloudTasks-TaskETA'] = (info.etaMs / 1000).toFixed(6);
  if (info.retryCount > 0 && info.previousFailure) {
    if (info.previousFailure.httpStatus !== undefined) {
      headers['X-CloudTasks-TaskPreviousResponse'] = String(info.previousFailure.httpStatus);
    }
    headers['X-CloudTasks-TaskRetryReason'] = info.previousFailure.reason;
  }

  const auth = target.auth;
  if (auth?.kind === 'oidc') {
    headers.Authorization = `Bearer ${tokens.oidcTokenFor({ serviceAccountEmail: auth.serviceAccountEmail, audience: auth.audience })}`;
  } else if (auth?.kind === 'oauth') {
    headers.Authorization = `Bearer ${tokens.oauthTokenFor({ serviceAccountEmail: auth.serviceAccountEmail, scope: auth.scope })}`;
  }
  return { method: target.method, url: target.url, headers, body: target.body };
}
