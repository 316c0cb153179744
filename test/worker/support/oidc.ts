import { createSign, generateKeyPairSync } from 'node:crypto';

/** A local stand-in for Google's token signer: an RSA key, its public half as the "certs", and ID tokens. */
export class LocalSigner {
  readonly kid: string;
  private readonly privateKey: string;
  readonly publicKey: string;

  constructor(kid = 'test-key-1') {
    this.kid = kid;
    const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.privateKey = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    this.publicKey = pair.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  }

  certs(): Record<string, string> {
    return { [this.kid]: this.publicKey };
  }

  /** A Google-style ID token; `claims` override the defaults (issued now, valid an hour, verified email). */
  token(claims: { email: string; aud: string } & Record<string, unknown>): string {
    const now = Math.floor(Date.now() / 1000);
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const head = b64({ alg: 'RS256', typ: 'JWT', kid: this.kid });
    const body = b64({ iss: 'https://accounts.google.com', sub: '1234', email_verified: true, iat: now, exp: now + 3600, ...claims });
    const signature = createSign('RSA-SHA256').update(`${head}.${body}`).sign(this.privateKey).toString('base64url');
    return `${head}.${body}.${signature}`;
  }
}
