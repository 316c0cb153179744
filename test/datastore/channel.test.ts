import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { OAuth2Client } from 'google-auth-library';
import { callCredentials } from '../../src/datastore/channel';
import { openConnection } from '../../src/datastore/connection';

// The real project's side of the channel, as far as it goes without a network: credentials, project, and the token on each call.
describe('the channel to a real project', () => {
  let dir: string;
  beforeAll(() => (dir = mkdtempSync(path.join(tmpdir(), 'dsm-channel-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("puts the auth client's token on every call, as an authorization header", async () => {
    const client = new OAuth2Client();
    client.setCredentials({ access_token: 'the-token', expiry_date: Date.now() + 3_600_000 });
    const metadata = await callCredentials(client).generateMetadata({ method_name: 'Lookup', service_url: 'https://datastore.googleapis.com/google.datastore.v1.Datastore' });
    expect(metadata.get('authorization')).toEqual(['Bearer the-token']);
  });

  it("opens with a service account's key file, its project taken from the key", async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
    const keyFile = path.join(dir, 'key.json');
    writeFileSync(
      keyFile,
      JSON.stringify({
        type: 'service_account',
        project_id: 'from-the-key',
        private_key_id: 'k1',
        private_key: privateKey,
        client_email: 'migrator@from-the-key.iam.gserviceaccount.com',
        client_id: '1',
      }),
    );
    const connection = await openConnection({ keyFilename: keyFile }, {});
    expect(connection).toMatchObject({ projectId: 'from-the-key', databaseId: '', emulatorHost: undefined });
    connection.channel.close();
  });

  it('says how to sign in when there are no credentials, and names the file it could not read', async () => {
    const missing = path.join(dir, 'missing.json');
    await expect(openConnection({ keyFilename: missing, projectId: 'p' }, {})).rejects.toMatchObject({
      code: 'CONNECTION',
      message: expect.stringMatching(new RegExp(`No Google Cloud credentials were found \\(.*${missing.replace(/[.]/g, '\\.')}.*gcloud auth application-default login`)),
    });
  });
});
