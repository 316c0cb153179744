import { readFileSync } from 'node:fs';
import { DatastoreClient } from '@google-cloud/datastore/build/src/v1/datastore_client';
import type { google } from '@google-cloud/datastore/build/protos/protos';
import { grpc } from 'google-gax';
import { Root } from 'protobufjs';
import { Key } from '../../src/datastore';
import { encodeLookupRequest, type LookupRequest } from '../../src/datastore/lookup-request';

const lookupRequestType = Root.fromJSON(JSON.parse(readFileSync(require.resolve('@google-cloud/datastore/build/protos/protos.json'), 'utf8'))).lookupType('google.datastore.v1.LookupRequest');
/** Both encodings read back, defaults filled in: gax also writes fields that hold their default (an empty database id). */
const decoded = (bytes: Uint8Array) => lookupRequestType.toObject(lookupRequestType.decode(bytes), { longs: String, bytes: String, defaults: true });

describe('lookup requests encoded straight from keys', () => {
  it('read back as the request gax would send for the same keys, transaction and mask', async () => {
    const gapic = new DatastoreClient({ servicePath: '127.0.0.1', port: 1, sslCreds: grpc.credentials.createInsecure(), projectId: 'p', clientOptions: { universeDomain: 'googleapis.com' } });
    const stub = (await gapic.initialize()) as unknown as grpc.Client;
    const serialize = (stub.constructor as grpc.ServiceClientConstructor).service.Lookup.requestSerialize as (request: google.datastore.v1.ILookupRequest) => Buffer;
    const keys = [
      Key.of('Person', 1),
      Key.of('Person', 9223372036854775807n),
      Key.of('Person', 'ada', { namespace: 'tenant' }),
      Key.of('Org', 'o', { namespace: 'tenant' }).child('Person', 42),
      Key.of('Org', 'ünïcode/name'),
    ];
    const requests: LookupRequest[] = [
      { projectId: 'p', databaseId: '', keys },
      { projectId: 'p', databaseId: 'db', keys, transaction: Buffer.from('tx-id'), paths: ['colour', '`odd.name`'] },
    ];
    for (const request of requests) {
      const plain: google.datastore.v1.ILookupRequest = {
        projectId: request.projectId,
        databaseId: request.databaseId,
        keys: request.keys.map((k) => k.toProto(request.projectId, request.databaseId)),
        readOptions: request.transaction ? { transaction: request.transaction } : undefined,
        propertyMask: request.paths ? { paths: [...request.paths] } : undefined,
      };
      expect(decoded(encodeLookupRequest(request))).toEqual(decoded(serialize(plain)));
    }
    // The largest id keeps every digit: past 2^53 it is written from its string.
    expect((decoded(encodeLookupRequest(requests[0])).keys as { path: { id: string }[] }[])[1].path[0].id).toBe('9223372036854775807');
    await gapic.close();
  });
});
