import { readFileSync } from 'node:fs';
import { DatastoreClient } from '@google-cloud/datastore/build/src/v1/datastore_client';
import type { google } from '@google-cloud/datastore/build/protos/protos';
import { grpc } from 'google-gax';
import { Reader, Root } from 'protobufjs';
import { decodeProperties, Entity, Key } from '../../src/datastore';
import { encodeEntity } from '../../src/datastore/encoded-entity';
import { encodeCommitRequests, type CommitHead } from '../../src/datastore/commit-request';
import type { Mutation } from '../../src/datastore/transaction';
import { SEED } from '../support/raw-entities';

/** A request as gax takes it: plain mutations. */
type CommitRequest = google.datastore.v1.ICommitRequest & { mutations: google.datastore.v1.IMutation[] };

/** gax's own serializer for Commit: the stub is made without connecting. */
async function gaxSerializer(): Promise<{ serialize: (request: CommitRequest) => Buffer; close: () => Promise<void> }> {
  const gapic = new DatastoreClient({ servicePath: '127.0.0.1', port: 1, sslCreds: grpc.credentials.createInsecure(), projectId: 'p', clientOptions: { universeDomain: 'googleapis.com' } });
  const stub = (await gapic.initialize()) as unknown as grpc.Client;
  const serialize = (stub.constructor as grpc.ServiceClientConstructor).service.Commit.requestSerialize as (request: CommitRequest) => Buffer;
  return { serialize, close: () => gapic.close() };
}

describe('commit requests encoded straight from entities and keys', () => {
  it('read back as the request gax sends, for every value type, as read back by a lookup and as built in code', async () => {
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
    const gone = Key.of('Gone', 5);
    // Read with a property mask: written with it.
    const partial = new Entity(built.key, {}, ['when', 'ratio']).set('when', built.get('when')!).set('ratio', -0);
    const pairs: [CommitHead, Mutation[], CommitRequest][] = [
      [
        { projectId: 'p', databaseId: 'db', mode: 'TRANSACTIONAL', transaction: Buffer.from('tx-id') },
        [{ upsert: read }, { update: partial }, { insert: built }, { delete: gone }],
        {
          projectId: 'p',
          databaseId: 'db',
          mode: 'TRANSACTIONAL',
          transaction: Buffer.from('tx-id'),
          mutations: [
            { upsert: read.toProto('p', 'db') },
            { update: partial.toProto('p', 'db'), propertyMask: { paths: ['when', 'ratio'] } },
            { insert: built.toProto('p', 'db') },
            { delete: gone.toProto('p', 'db') },
          ],
        },
      ],
      [{ projectId: 'p', databaseId: '', mode: 'NON_TRANSACTIONAL' }, [{ upsert: built }], { projectId: 'p', mode: 'NON_TRANSACTIONAL', mutations: [{ upsert: built.toProto('p') }] }],
    ];
    for (const [head, mutations, theirs] of pairs) {
      const requests = encodeCommitRequests(head, mutations);
      expect(requests.map((r) => r.mutations)).toEqual([mutations.length]);
      expect(decoded(requests[0].bytes)).toEqual(decoded(gax.serialize(theirs)));
    }
    expect(Object.keys(read.toProto('p').properties ?? {})).toHaveLength(Object.keys(SEED).length);
    await gax.close();
  });

  it('write an entity changed since its lookup as gax would, copying the entries it did not change from the bytes it was read with', async () => {
    const gax = await gaxSerializer();
    // As a server sends them: key values carry their partition, and one name is not ASCII.
    const properties = {
      ...SEED,
      ref: { keyValue: { partitionId: { projectId: 'p', databaseId: 'db' }, path: [{ kind: 'Other', name: 'o' }] } },
      naïve: { stringValue: 'plain' },
      other: { stringValue: 'naïve' },
    };
    const bytes = seedBytes(properties);
    const read = Entity.read(Key.of('Person', 5), decodeProperties(bytes), undefined, bytes);
    read.set('keep', 'changed').set('naïve', 'écrit').set('added', Key.of('Org', 1)).setIndexed('micros', false);
    read.delete('blob');
    read.set('gone', 1);
    read.delete('gone');
    const head = { projectId: 'p', databaseId: 'db', mode: 'NON_TRANSACTIONAL' as const };
    const [request] = encodeCommitRequests(head, [{ upsert: read }]);
    expect(decoded(request.bytes)).toEqual(decoded(gax.serialize({ ...head, mutations: [{ upsert: read.toProto('p', 'db') }] })));
    // One entry per property, the changed ones not also as read: a map keeps the last of two, which decoding alone would not show.
    expect(propertyEntries(mutationsOf(request.bytes)[0])).toHaveLength(read.names().length);
    expect(read.names()).toEqual(expect.arrayContaining(['nested', 'added', 'other']));
    expect(read.names()).not.toContain('blob');
    // Unchanged since the lookup: the bytes as read, whole.
    const unchanged = Entity.read(Key.of('Person', 6), decodeProperties(bytes), undefined, bytes);
    expect(encodeCommitRequests(head, [{ upsert: unchanged }])[0].bytes.includes(bytes)).toBe(true);
    await gax.close();
  });

  it('append entities encoded beforehand as upserts: the request gax sends for the same entities last', async () => {
    const gax = await gaxSerializer();
    const key = Key.of('_dsmigrate_undo', 'op#0|a.b!c', { namespace: 'tenant' });
    const when = new Date(Date.UTC(2026, 11, 6, 21, 30, 5, 123));
    const encoded = encodeEntity(
      key,
      [
        { name: 'operation', value: { string: '0002_x#0' }, indexed: true },
        { name: 'before', value: { blob: Buffer.from([0, 1, 255]) }, indexed: false },
        { name: 'gone', value: { null: true }, indexed: false },
        { name: 'expiresAt', value: { timestamp: when }, indexed: true },
      ],
      'p',
    );
    const plain: google.datastore.v1.IEntity = {
      key: { partitionId: { projectId: 'p', namespaceId: 'tenant' }, path: [{ kind: '_dsmigrate_undo', name: 'op#0|a.b!c' }] },
      properties: {
        operation: { stringValue: '0002_x#0' },
        before: { blobValue: Buffer.from([0, 1, 255]), excludeFromIndexes: true },
        gone: { nullValue: 'NULL_VALUE', excludeFromIndexes: true },
        expiresAt: { timestampValue: { seconds: String(Math.floor(when.getTime() / 1000)), nanos: 123_000_000 } },
      },
    };
    const other = Entity.from(Key.of('Person', 1), { a: 1 });
    const head = { projectId: 'p', databaseId: '', mode: 'TRANSACTIONAL' as const, transaction: Buffer.from('tx') };
    expect(decoded(encodeCommitRequests(head, [{ upsertEncoded: encoded }, { upsert: other }])[0].bytes)).toEqual(
      decoded(gax.serialize({ ...head, mutations: [{ upsert: plain }, { upsert: other.toProto('p') }] })),
    );
    await gax.close();
  });

  it('split into requests within the limits, each the request gax sends for its share, every mutation once and in order', async () => {
    const gax = await gaxSerializer();
    const head = { projectId: 'p', databaseId: 'db', mode: 'NON_TRANSACTIONAL' as const };
    // The fourth entity is larger than the byte limit below on its own.
    const entities = [100, 100, 100, 1000, 100, 100, 100].map((size, i) => Entity.from(Key.of('Person', i + 1), { name: 'x'.repeat(size) }));
    const mutations: Mutation[] = entities.map((upsert) => ({ upsert }));
    const gaxOf = (share: Entity[]) => decoded(gax.serialize({ ...head, mutations: share.map((e) => ({ upsert: e.toProto('p', 'db') })) }));
    const shares = (requests: ReturnType<typeof encodeCommitRequests>) => {
      let from = 0;
      for (const request of requests) {
        expect(decoded(request.bytes)).toEqual(gaxOf(entities.slice(from, from + request.mutations)));
        from += request.mutations;
      }
      expect(from).toBe(entities.length);
      return requests.map((r) => r.mutations);
    };

    expect(shares(encodeCommitRequests(head, mutations, { mutations: 3, bytes: Infinity }))).toEqual([3, 3, 1]);

    // Two of the small entities fill a request: the large one travels alone, and each of its neighbours with what still fits.
    const limit = encodeCommitRequests(head, mutations.slice(0, 2))[0].bytes.length;
    const bySize = encodeCommitRequests(head, mutations, { mutations: 500, bytes: limit });
    expect(shares(bySize)).toEqual([2, 1, 1, 2, 1]);
    expect(bySize.filter((r) => r.bytes.length > limit).map((r) => r.mutations)).toEqual([1]);
    await gax.close();
  });
});

const commitRequestType = Root.fromJSON(JSON.parse(readFileSync(require.resolve('@google-cloud/datastore/build/protos/protos.json'), 'utf8'))).lookupType('google.datastore.v1.CommitRequest');
/** A request read back, defaults filled in: gax also writes fields that hold their default (an empty database id). */
const decoded = (bytes: Uint8Array) => commitRequestType.toObject(commitRequestType.decode(bytes), { longs: String, enums: String, bytes: String, defaults: true });

const entityType = commitRequestType.root.lookupType('google.datastore.v1.Entity');

/** SEED (or these properties) as the bytes of an Entity's properties, encoded by protobufjs from the official client's objects (not by the encoder under test). */
function seedBytes(properties: Record<string, unknown> = SEED): Buffer {
  return Buffer.from(entityType.encode(entityType.fromObject({ properties })).finish());
}

/** A request's mutations (6), each as written. */
function mutationsOf(request: Uint8Array): Uint8Array[] {
  const mutations: Uint8Array[] = [];
  const reader = Reader.create(request);
  while (reader.pos < reader.len) {
    const field = reader.uint32();
    if (field === ((6 << 3) | 2)) mutations.push(reader.bytes());
    else reader.skipType(field & 7);
  }
  return mutations;
}

/** The names of a mutation's upsert's property entries as written, in order and duplicates kept (decoding a map would keep only the last). */
function propertyEntries(mutation: Uint8Array): string[] {
  const names: string[] = [];
  const mutationReader = Reader.create(mutation);
  expect(mutationReader.uint32()).toBe((6 << 3) | 2);
  const entity = Reader.create(mutationReader.bytes());
  while (entity.pos < entity.len) {
    const field = entity.uint32();
    if (field !== ((3 << 3) | 2)) entity.skipType(field & 7);
    else {
      const entry = Reader.create(entity.bytes());
      expect(entry.uint32()).toBe((1 << 3) | 2);
      names.push(entry.string());
    }
  }
  return names;
}
