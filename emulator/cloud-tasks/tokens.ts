/**
 * Tokens the emulator puts in `Authorization: Bearer ...` for tasks with oidc_token or oauth_token.
 * The emulator cannot sign Google tokens: the defaults are unsigned stand-ins, so a worker under
 * test must skip signature verification (or the test injects its own token function).
 */

export interface OidcTokenRequest {
  serviceAccountEmail: string;
  audience: string;
}
export type OidcTokenFor = (request: OidcTokenRequest) => string;

export interface OAuthTokenRequest {
  serviceAccountEmail: string;
  scope: string;
}
export type OAuthTokenFor = (request: OAuthTokenRequest) => string;

const base64url = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A JWT with the claims of a Google ID token, `alg: none` and an empty signature. */
export const unsignedOidcToken: OidcTokenFor = ({ serviceAccountEmail, audience }) => {
  const issuedAt = Math.floor(Date.now() / 1000);
  const header = { alg: 'none', typ: 'JWT' };
  const claims = {
    iss: 'https://accounts.google.com',
    aud: audience,
    sub: serviceAccountEmail,
    email: serviceAccountEmail,
    email_verified: true,
    iat: issuedAt,
    exp: issuedAt + 3600,
  };
  return `${base64url(header)}.${base64url(claims)}.`;
};

/** An opaque stand-in for an OAuth access token; it names the account and scope for debugging. */
export const fakeAccessToken: OAuthTokenFor = ({ serviceAccountEmail, scope }) => `emulator-access-token.${base64url({ email: serviceAccountEmail, scope })}`;
