import http from 'node:http';
import https from 'node:https';
import type { OutgoingRequest } from './outgoing-request';

export type HttpOutcome = { kind: 'response'; status: number } | { kind: 'timeout' } | { kind: 'network-error'; message: string } | { kind: 'aborted' };

// No keep-alive: a reused socket that the target closed meanwhile would fail an attempt that
// never reached the handler, and tests count attempts. Connections to local targets are cheap.
const agents = { http: new http.Agent({ keepAlive: false }), https: new https.Agent({ keepAlive: false }) };

/**
 * Sends one request and waits for the whole response. The deadline covers sending, the handler's
 * work and the body; when it passes, or `signal` aborts, the connection is destroyed.
 */
export function sendHttp(request: OutgoingRequest, deadlineMs: number, signal: AbortSignal): Promise<HttpOutcome> {
  return new Promise((resolve) => {
    let outgoing: http.ClientRequest | undefined;
    let timer: NodeJS.Timeout | undefined;
    let settled = false;
    const finish = (outcome: HttpOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      outgoing?.destroy();
      resolve(outcome);
    };
    const onAbort = (): void => finish({ kind: 'aborted' });
    if (signal.aborted) return finish({ kind: 'aborted' });

    const url = new URL(request.url);
    const isHttps = url.protocol === 'https:';
    try {
      outgoing = (isHttps ? https : http).request(
        url,
        {
          method: request.method,
          headers: { ...request.headers, 'Content-Length': String(request.body.length) },
          agent: isHttps ? agents.https : agents.http,
        },
        (response) => {
          response.on('end', () => finish({ kind: 'response', status: response.statusCode ?? 0 }));
          response.on('close', () => {
            if (!response.complete) finish({ kind: 'network-error', message: 'connection closed before the response ended' });
          });
          response.resume(); // the body is not used, but must be read for 'end'
        },
      );
    } catch (error) {
      // e.g. a header value that node refuses to send: the attempt fails like a bad connection would
      return finish({ kind: 'network-error', message: error instanceof Error ? error.message : String(error) });
    }
    timer = setTimeout(() => finish({ kind: 'timeout' }), deadlineMs);
    signal.addEventListener('abort', onAbort, { once: true });
    outgoing.on('error', (error) => finish({ kind: 'network-error', message: error.message }));
    outgoing.end(request.body);
  });
}
