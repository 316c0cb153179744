import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Shared-secret signatures for the emulator, which cannot mint Google-signed OIDC tokens. The sender
 * signs the timestamp and the body; the worker recomputes the signature and checks the timestamp.
 *
 * The timestamp is fixed when the task is created (a task's headers never change between attempts),
 * so the accepted age must cover a task's whole life in the queue, retries included. Within that
 * window a replayed request is indistinguishable from Cloud Tasks' own at-least-once redelivery,
 * which the pipeline makes harmless (a step already taken is acknowledged without effect); outside
 * it, or with any byte of the body changed, the request is refused.
 */
export const SIGNATURE_HEADER = 'x-dsmigrate-signature';
export const MIN_SECRET_LENGTH = 16;

export interface SignatureCheck {
  nowMs?: number;
  /** Oldest accepted signature. */
  maxAgeMs: number;
  /** Tolerated clock difference for signatures from the future. */
  maxSkewMs?: number;
}

export type SignatureVerdict = { ok: true } | { ok: false; reason: string };

function mac(secret: string, timestamp: string, body: Buffer): Buffer {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest();
}

/** The header value: `t=<unix ms>,v1=<hex hmac-sha256 of "t." + body>`. */
export function signBody(secret: string, body: Buffer, nowMs = Date.now()): string {
  const timestamp = String(Math.floor(nowMs));
  return `t=${timestamp},v1=${mac(secret, timestamp, body).toString('hex')}`;
}

export function verifySignature(secret: string, header: string | undefined, body: Buffer, check: SignatureCheck): SignatureVerdict {
  if (!header) return { ok: false, reason: `no ${SIGNATURE_HEADER} header` };
  const fields = new Map(header.split(',').map((part) => part.trim().split('=', 2) as [string, string]));
  const timestamp = fields.get('t');
  const given = fields.get('v1');
  if (!timestamp || !/^\d{1,16}$/.test(timestamp) || !given || !/^[0-9a-f]{64}$/.test(given)) return { ok: false, reason: 'malformed signature header' };
  // Compare before looking at the time, so a forged header learns nothing from the answer.
  if (!timingSafeEqual(mac(secret, timestamp, body), Buffer.from(given, 'hex'))) return { ok: false, reason: 'signature mismatch' };
  const age = (check.nowMs ?? Date.now()) - Number(timestamp);
  if (age > check.maxAgeMs) return { ok: false, reason: `signature is ${Math.round(age / 1000)} s old (limit ${Math.round(check.maxAgeMs / 1000)} s)` };
  if (age < -(check.maxSkewMs ?? 60_000)) return { ok: false, reason: 'signature is dated in the future' };
  return { ok: true };
}
