import type { IncomingHttpHeaders } from 'node:http';
import type { LoginTicket, OAuth2Client } from 'google-auth-library';
import { SIGNATURE_HEADER, verifySignature, type WorkerAuth } from '../executors/cloud-tasks';
import { errorMessage } from '../errors';

export interface AuthRequest {
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** 401: no or bad credentials (missing, unsigned, forged, expired). 403: valid, but not for us or not allowed. */
export type AuthResult = { ok: true; principal: string } | { ok: false; status: 401 | 403; reason: string };

export interface Authenticator {
  authenticate(request: AuthRequest): Promise<AuthResult>;
}

/** Google's signing keys by key id (PEM), as `OAuth2Client.getFederatedSignonCertsAsync` returns them. */
export type CertSource = () => Promise<Record<string, string>>;

export interface AuthOptions {
  /** Where OIDC verification gets its keys; default Google's (fetched and cached by google-auth-library). Tests pass their own. */
  certs?: CertSource;
  now?: () => number;
}

const GOOGLE_ISSUERS = ['https://accounts.google.com', 'accounts.google.com'];

export function authenticatorFor(auth: WorkerAuth, options: AuthOptions = {}): Authenticator {
  return auth.kind === 'hmac' ? hmacAuthenticator(auth.secret, auth.maxAgeMs, options.now) : oidcAuthenticator(auth.audience, auth.allowedServiceAccounts, options.certs);
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** The emulator's scheme: an HMAC of the body and a timestamp, made with a secret both sides hold. */
export function hmacAuthenticator(secret: string, maxAgeMs: number, now: () => number = Date.now): Authenticator {
  return {
    async authenticate({ headers, body }) {
      const verdict = verifySignature(secret, header(headers, SIGNATURE_HEADER), body, { maxAgeMs, nowMs: now() });
      return verdict.ok ? { ok: true, principal: 'shared-secret' } : { ok: false, status: 401, reason: verdict.reason };
    },
  };
}

/**
 * Production: the OIDC ID token Cloud Tasks mints for the task's service account. Its signature is
 * checked against Google's keys, then its expiry, issuer and audience, then that the account is one
 * we allow and that Google verified the email.
 */
export function oidcAuthenticator(audience: string, allowedServiceAccounts: readonly string[], certs?: CertSource): Authenticator {
  // Loaded with the first request: the worker's module is loaded by every dsmigrate command, and google-auth-library cost each start about 40 ms.
  let loaded: Promise<OAuth2Client> | undefined;
  const client = () => (loaded ??= import('google-auth-library').then(({ OAuth2Client }) => new OAuth2Client()));
  const keys: CertSource = certs ?? (async () => (await (await client()).getFederatedSignonCertsAsync()).certs as Record<string, string>);
  const allowed = new Set(allowedServiceAccounts.map((e) => e.toLowerCase()));
  return {
    async authenticate({ headers }) {
      const match = /^Bearer\s+(\S+)$/i.exec(header(headers, 'authorization') ?? '');
      if (!match) return { ok: false, status: 401, reason: 'no bearer token' };
      let ticket: LoginTicket;
      try {
        ticket = await (await client()).verifySignedJwtWithCertsAsync(match[1], await keys(), audience, GOOGLE_ISSUERS);
      } catch (error) {
        const reason = errorMessage(error).split(':')[0];
        // A genuine token minted for another service: authenticated, but not for us.
        return { ok: false, status: /wrong recipient/i.test(reason) ? 403 : 401, reason };
      }
      const claims = ticket.getPayload();
      const email = claims?.email?.toLowerCase();
      if (!email || claims?.email_verified !== true) return { ok: false, status: 403, reason: 'token has no verified email' };
      if (!allowed.has(email)) return { ok: false, status: 403, reason: `account ${email} is not allowed` };
      return { ok: true, principal: email };
    },
  };
}
