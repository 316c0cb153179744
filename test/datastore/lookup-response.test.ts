import { readFileSync } from 'node:fs';
import { DatastoreClient } from '@google-cloud/datastore/build/src/v1/datastore_client';
import { grpc } from 'google-gax';
import { Root } from 'protobufjs';
import { decodeProperties, Key } from '../../src/datastore';
import { decodeLookupResponse } from '../../src/datastore/lookup-response';

const protos = Root.fromJSON(JSON.parse(readFileSync(require.resolve('@google-cloud/datastore/build/protos/protos.json'), 'utf8')));
const LookupResponse = protos.lookupType('google.datastore.v1.LookupResponse');

const key = (namespace: string, ...path: object[]) => ({ partitionId: { projectId: 'p', namespaceId: namespace }, path });
const BIG_ID = '9223372036854775000';

/** A response with every value type, index exclusion, meanings, nested entities, and the fields the decoder skips. */
function response(): Uint8Array {
  const properties = {
    nothing: { nullValue: 'NULL_VALUE' },
    yes: { booleanValue: true },
    big: { integerValue: BIG_ID, excludeFromIndexes: true },
    negative: { integerValue: '-42' },
    ratio: { doubleValue: 0.1 },
    zero: { doubleValue: 0 },
    when: { timestampValue: { seconds: '1700000000', nanos: 123456789 } },
    other: { keyValue: key('tenant', { kind: 'Org', name: 'o1' }, { kind: 'Team', id: '7' }) },
    text: { stringValue: 'naïve 🙂', meaning: 15, excludeFromIndexes: true },
    empty: { stringValue: '' },
    blob: { blobValue: Buffer.from([0, 1, 2, 255]) },
    where: { geoPointValue: { latitude: 51.5, longitude: -0.12 } },
    nested: { entityValue: { key: key('', { kind: 'Inner', id: '1' }), properties: { deep: { arrayValue: { values: [{ integerValue: '1' }, { stringValue: 'two' }] } } } } },
    list: { arrayValue: { values: [{ stringValue: 'a', excludeFromIndexes: true }, { nullValue: 'NULL_VALUE' }] } },
    none: { arrayValue: {} },
  };
  const result = (k: object, props: object) => ({
    entity: { key: k, properties: props },
    version: '1700000000000001',
    createTime: { seconds: '1' },
    updateTime: { seconds: '2' },
    cursor: Buffer.from('c'),
  });
  return LookupResponse.encode(
    LookupResponse.fromObject({
      found: [
        result(key('', { kind: 'Person', id: BIG_ID }), properties),
        result(key('tenant', { kind: 'Org', name: 'o1' }, { kind: 'Person', name: 'naïve-é' }), {}),
        result(key('', { kind: 'Person', id: '3' }), { only: { stringValue: 'masked' } }),
      ],
      missing: [{ entity: { key: key('', { kind: 'Person', id: '4' }) }, version: '5' }],
      deferred: [key('', { kind: 'Person', id: '5' }), key('x', { kind: 'Person', name: 'six' })],
      transaction: Buffer.from('tx'),
      readTime: { seconds: '3' },
    }),
  ).finish();
}

describe('lookup responses decoded from the wire', () => {
  it('give the keys and properties that gax gives, and the deferred keys', async () => {
    // gax's own decoder for Lookup: the stub is made without connecting.
    const gapic = new DatastoreClient({ servicePath: '127.0.0.1', port: 1, sslCreds: grpc.credentials.createInsecure(), projectId: 'p', clientOptions: { universeDomain: 'googleapis.com' } });
    const stub = (await gapic.initialize()) as unknown as grpc.Client;
    const gax = (stub.constructor as grpc.ServiceClientConstructor).service.Lookup.responseDeserialize(Buffer.from(response())) as {
      found: { entity: { key: Parameters<typeof Key.fromProto>[0]; properties: object } }[];
      deferred: Parameters<typeof Key.fromProto>[0][];
    };
    const ours = decodeLookupResponse(response());
    expect(ours.found.map((f) => f.key.toString())).toEqual(gax.found.map((f) => Key.fromProto(f.entity.key).toString()));
    expect(ours.found.map((f) => f.properties)).toEqual(gax.found.map((f) => f.entity.properties));
    expect(ours.found[0].key.id).toBe(BIG_ID);
    expect(Object.keys(ours.found[0].properties)).toHaveLength(15);
    expect(ours.deferred.map(String)).toEqual(gax.deferred.map((k) => Key.fromProto(k).toString()));
    expect(ours.deferred.map(String)).toEqual(['Person:5', '[x]Person:"six"']);
    await gapic.close();
  });

  it("keep each entity's properties as sent, which decode to what was read (a before-image's stored form)", () => {
    const ours = decodeLookupResponse(response());
    for (const found of ours.found) expect(decodeProperties(found.bytes!)).toEqual(found.properties);
    expect(ours.found[1].bytes).toEqual(new Uint8Array(0));
  });

  it('keep no bytes for an entity whose properties do not lie together (its key between them)', () => {
    const Entity = protos.lookupType('google.datastore.v1.Entity');
    const entry = (name: string, value: object) => Entity.encode(Entity.fromObject({ properties: { [name]: value } })).finish();
    const keyField = Entity.encode(Entity.fromObject({ key: key('', { kind: 'A', id: '1' }) })).finish();
    const entity = Buffer.concat([entry('a', { stringValue: 'x' }), keyField, entry('b', { integerValue: '2' })]);
    const EntityResult = protos.lookupType('google.datastore.v1.EntityResult');
    const result = Buffer.from(EntityResult.encode(EntityResult.fromObject({ version: '1' })).finish());
    // found (1) → EntityResult whose entity (1) is the hand-ordered message.
    const wrapped = (field: number, bytes: Uint8Array) => Buffer.concat([Buffer.from([(field << 3) | 2, bytes.length]), bytes]);
    const [found] = decodeLookupResponse(wrapped(1, Buffer.concat([wrapped(1, entity), result]))).found;
    expect(Object.keys(found.properties)).toEqual(['a', 'b']);
    expect(found.bytes).toBeUndefined();
  });

  it('read a response with nothing found as empty', () => {
    expect(decodeLookupResponse(LookupResponse.encode(LookupResponse.fromObject({ missing: [{ entity: { key: key('', { kind: 'A', id: '1' }) } }] })).finish())).toEqual({ found: [], deferred: [] });
  });
});
