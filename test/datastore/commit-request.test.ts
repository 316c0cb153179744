import { readFileSync } from 'node:fs';
import { DatastoreClient } from '@google-cloud/datastore/build/src/v1/datastore_client';
import type { google } from '@google-cloud/datastore/build/protos/protos';
import { grpc } from 'google-gax';
import { Root } from 'protobufjs';
import { decodeProperties, Entity, Key } from '../../src/datastore';
import { encodeCommitRequest } from '../../src/datastore/commit-request';
import { SEED } from '../support/raw-entities';

type CommitRequest = google.datastore.v1.ICommitRequest;

/** gax's own serializer for Commit: the stub is made without connecting. */
async function gaxSerializer(): Promise<{ serialize: (request: CommitRequest) => Buffer; close: () => Promise<void> }> {
  const gapic = new DatastoreClient({ servicePath: '127.0.0.1', port: 1, sslCreds: grpc.credentials.createInsecure(), projectId: 'p', clientOptions: { universeDomain: 'googleapis.com' } });
  const stub = (await gapic.initialize()) as unknown as grpc.Client;
  const serialize = (stub.constructor as grpc.ServiceClientConstructor).service.Commit.requestSerialize as (request: CommitRequest) => Buffer;
  return { serialize, close: () => gapic.close() };
}

describe('commit requests encoded straight from plain objects', () => {
  it('are the bytes gax sends, for every value type, as read back by a lookup and as built in code', async () => {
    const gax = await gaxSerializer();
    // SEED's values as a lookup reads them (gax's plain objects, defaults and oneof names included), and values set in code.
    const read = Entity.read(Key.of('Person', '9223372036854775000'), decodeProperties(seedBytes()));
    const built = Entity.from(
      Key.of('Person', 'n', { namespace: 'tenant' }),
      {
        when: new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 678)),
        ratio: -0,
        blob: Buffer.from([0, 255]),
        list: [1, 'two', null, true],
        ref: Key.of('Org', 'o', { namespace: 'tenant' }),
        inner: { a: 1, b: { c: 'd' } },
      },
      { excludeFromIndexes: ['blob'] },
    );
    const requests: CommitRequest[] = [
      {
        projectId: 'p',
        databaseId: 'db',
        mode: 'TRANSACTIONAL',
        transaction: Buffer.from('tx-id'),
        mutations: [
          { upsert: read.toProto('p', 'db') },
          { update: built.toProto('p', 'db'), propertyMask: { paths: ['when', 'ratio'] } },
          { insert: built.toProto('p', 'db') },
          { delete: Key.of('Gone', 5).toProto('p', 'db') },
        ],
      },
      { projectId: 'p', mode: 'NON_TRANSACTIONAL', mutations: [{ upsert: built.toProto('p') }] },
    ];
    for (const request of requests) expect(encodeCommitRequest(request)).toEqual(gax.serialize(request));
    expect(Object.keys(read.toProto('p').properties ?? {})).toHaveLength(Object.keys(SEED).length);
    await gax.close();
  });
});

/** SEED as the bytes of an Entity's properties, encoded by protobufjs from the official client's objects (not by the encoder under test). */
function seedBytes(): Buffer {
  const entity = Root.fromJSON(JSON.parse(readFileSync(require.resolve('@google-cloud/datastore/build/protos/protos.json'), 'utf8'))).lookupType('google.datastore.v1.Entity');
  return Buffer.from(entity.encode(entity.fromObject({ properties: SEED })).finish());
}
