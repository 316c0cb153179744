import type { IncomingMessage, ServerResponse } from 'node:http';
import { DsMigrateError } from '../errors';

/** How long a client has to send its whole request, headers and body, before the worker hangs up. */
export const DEFAULT_READ_DEADLINE_MS = 10_000;

/**
 * The body could not be read within the limits: 413, more bytes than allowed; 408, not all of it
 * before the deadline. Both happen before authentication, so the status is all the client is told.
 */
export class BodyReadError extends DsMigrateError {
  constructor(
    readonly status: 408 | 413,
    message: string,
    context: { limitBytes?: number; deadlineMs?: number },
  ) {
    super('BAD_INPUT', message, context);
    this.name = 'BodyReadError';
  }
}

export interface BodyLimits {
  maxBytes: number;
  /** From the moment the handler is called: the headers are in by then (server.ts bounds those). */
  deadlineMs: number;
}

/**
 * The request body, refusing more than `maxBytes` without buffering them and giving up at the
 * deadline, so that a client sending a byte at a time holds no socket for long. A framework that
 * already read the body as raw bytes (express.raw(), a fastify content-type parser) leaves it in
 * `req.body`, and its own limits applied.
 */
export function readBody(req: IncomingMessage, limits: BodyLimits): Promise<Buffer> {
  const parsed = (req as IncomingMessage & { body?: unknown }).body;
  if (Buffer.isBuffer(parsed)) return parsed.length > limits.maxBytes ? Promise.reject(tooLarge(limits.maxBytes)) : Promise.resolve(parsed);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (finish: () => void): void => {
      if (settled) return;
      settled = true;
      finish();
    };
    // After a 413 the rest is still drained (see below), and the deadline bounds that drain too: the
    // socket is destroyed if the client has not finished by then.
    const timer = setTimeout(() => {
      if (settled) req.destroy();
      else settle(() => reject(new BodyReadError(408, `request body not received within ${limits.deadlineMs} ms`, { deadlineMs: limits.deadlineMs })));
    }, limits.deadlineMs);
    const done = (): void => clearTimeout(timer);
    req.on('data', (chunk: Buffer) => {
      if (settled) return;
      size += chunk.length;
      if (size <= limits.maxBytes) {
        chunks.push(chunk);
        return;
      }
      chunks.length = 0;
      // Keep reading (and dropping) the rest: closing a socket the client still writes to resets the
      // connection, and the client would never see the 413.
      settle(() => reject(tooLarge(limits.maxBytes)));
    });
    req.on('end', () => {
      done();
      settle(() => resolve(Buffer.concat(chunks)));
    });
    req.on('close', () => {
      done();
      settle(() => reject(new BodyReadError(408, 'the client closed the connection before sending the whole body', { deadlineMs: limits.deadlineMs })));
    });
    req.on('error', (error) => {
      done();
      settle(() => reject(error));
    });
  });
}

function tooLarge(maxBytes: number): BodyReadError {
  return new BodyReadError(413, `request body exceeds ${maxBytes} bytes`, { limitBytes: maxBytes });
}

/** `close`: the client may still be sending (a 408), so the connection is not reused; node closes it once the answer is written. */
export function sendJson(res: ServerResponse, status: number, body: Record<string, unknown>, options: { close?: boolean } = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...(options.close ? { Connection: 'close' } : {}) });
  res.end(text);
}

export function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
