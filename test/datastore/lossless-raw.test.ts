import type { google } from '@google-cloud/datastore/build/protos/protos';
import { Key } from '../../src/datastore';
import { LocalExecutor } from '../../src/executors';
import { AddFieldData, type Operation } from '../../src/operations';
import { describeEachFlavour, uniqueProject, type FlavourContext } from '../support/emulators';
import { rawClient } from '../support/raw-client';

type ValueProto = google.datastore.v1.IValue;
type RawEntity = google.datastore.v1.IEntity;

/**
 * Written by the official client, never by our codec: test/datastore/lossless.test.ts and
 * test/operations/lossless-operations.test.ts seed through the codec they check, so a codec that drops a
 * nested flag loses it on the way in as well as on the way out, and their before/after comparison agrees.
 */
const SEED: Record<string, ValueProto> = {
  nested: {
    entityValue: {
      properties: {
        // Meanings other clients set (22 on a blob, 15 on legacy text); both backends check them against the value type.
        note: { blobValue: Buffer.from('compressed bytes'), excludeFromIndexes: true, meaning: 22 },
        legacy: { stringValue: 'legacy', excludeFromIndexes: true, meaning: 15 },
        n: { integerValue: '7' },
        deeper: { entityValue: { properties: { hidden: { stringValue: 'deep', excludeFromIndexes: true, meaning: 15 }, flag: { booleanValue: true } } } },
      },
    },
    excludeFromIndexes: true,
  },
  big: { integerValue: '9007199254740993' },
  micros: { timestampValue: { seconds: '1700000000', nanos: 123456000 } },
  blob: { blobValue: Buffer.from([0, 1, 2, 254, 255]), excludeFromIndexes: true },
  geo: { geoPointValue: { latitude: 51.5074, longitude: -0.1278 } },
  nothing: { nullValue: 'NULL_VALUE' },
  emptyList: { arrayValue: { values: [] } },
  keep: { stringValue: 'as it was' },
};

const N = 5;

/**
 * The official client's representation, and nothing more: it marks the oneof in `valueType`, may hand back
 * 64-bit integers as Long, numbers or strings, and blobs as Uint8Array or base64; proto3 cannot tell an unset
 * `meaning`/`excludeFromIndexes` from 0/false. Everything else, nested flags included, is compared as is.
 */
function normalise(value: ValueProto): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [field, v] of Object.entries(value)) {
    if (field === 'valueType' || v === null || v === undefined) continue;
    if ((field === 'meaning' && v === 0) || (field === 'excludeFromIndexes' && v === false)) continue;
    if (field === 'integerValue') out[field] = String(v);
    else if (field === 'timestampValue') {
      const ts = v as google.protobuf.ITimestamp;
      out[field] = { seconds: String(ts.seconds ?? 0), nanos: ts.nanos ?? 0 };
    } else if (field === 'blobValue') out[field] = typeof v === 'string' ? v : Buffer.from(v as Uint8Array).toString('base64');
    else if (field === 'entityValue') {
      const properties = Object.fromEntries(Object.entries((v as RawEntity).properties ?? {}).map(([name, inner]) => [name, normalise(inner)]));
      out[field] = { properties };
    } else if (field === 'arrayValue') out[field] = { values: ((v as google.datastore.v1.IArrayValue).values ?? []).map(normalise) };
    else if (field === 'geoPointValue') {
      const g = v as google.type.ILatLng;
      out[field] = { latitude: g.latitude, longitude: g.longitude };
    } else out[field] = v;
  }
  return out;
}

async function rawSeed(ctx: FlavourContext, projectId: string, keys: Key[]): Promise<void> {
  const client = rawClient(ctx.host, projectId);
  try {
    await client.commit({ projectId, mode: 'NON_TRANSACTIONAL', mutations: keys.map((key) => ({ upsert: { key: key.toProto(projectId), properties: SEED } })) });
  } finally {
    await client.close();
  }
}

async function rawLookup(ctx: FlavourContext, projectId: string, keys: Key[]): Promise<RawEntity[]> {
  const client = rawClient(ctx.host, projectId);
  try {
    const [response]: [google.datastore.v1.ILookupResponse] = await client.lookup({ projectId, keys: keys.map((k) => k.toProto(projectId)) });
    const byId = new Map((response.found ?? []).map(({ entity }) => [String(entity!.key!.path!.at(-1)!.id), entity!]));
    return keys.map((k) => byId.get(String(k.path.at(-1)!.id))!);
  } finally {
    await client.close();
  }
}

describeEachFlavour('lossless rewrite of entities seeded by another client', (ctx) => {
  // A constant default reads under a property mask where the backend honours one; a default computed from the
  // entity reads and writes it whole, which is the path that re-sends every untouched property through the codec.
  const cases: [string, (kind: string) => Operation][] = [
    ['a constant default (property mask where honoured)', (kind) => new AddFieldData(kind, 'x', { default: 1 })],
    ['a default computed from the entity (whole entity)', (kind) => new AddFieldData(kind, 'x', { default: (e) => (e.has('keep') ? 1 : 0) })],
  ];

  it.each(cases)('AddFieldData with %s leaves every other property exactly as seeded', async (_, make) => {
    const projectId = uniqueProject('r');
    const store = await ctx.connect({ projectId });
    const kind = 'RawSeeded';
    const keys = Array.from({ length: N }, (_, i) => Key.of(kind, i + 1));
    await rawSeed(ctx, projectId, keys);

    const seeded = await rawLookup(ctx, projectId, keys);
    // The seed itself must have reached the store intact, or the comparison below proves nothing.
    for (const entity of seeded)
      expect(Object.fromEntries(Object.entries(entity.properties!).map(([n, v]) => [n, normalise(v)]))).toEqual(Object.fromEntries(Object.entries(SEED).map(([n, v]) => [n, normalise(v)])));

    const result = await new LocalExecutor().runOperation({ store, job: { namespace: '', id: 'raw#1' }, operation: make(kind), migration: 'raw' });
    expect(result).toMatchObject({ scanned: N, changed: N, failed: 0 });

    const after = await rawLookup(ctx, projectId, keys);
    for (const entity of after) {
      expect(entity).toBeDefined();
      const { x, ...untouched } = entity.properties!;
      expect(normalise(x)).toEqual({ integerValue: '1' });
      expect(Object.keys(untouched).sort()).toEqual(Object.keys(SEED).sort());
      for (const [name, literal] of Object.entries(SEED)) expect([name, normalise(untouched[name])]).toEqual([name, normalise(literal)]);
      // Spelled out, because these are what a codec most easily drops on the way out.
      const nested = untouched.nested;
      expect(nested.excludeFromIndexes).toBe(true);
      expect(nested.entityValue!.properties!.note).toMatchObject({ excludeFromIndexes: true, meaning: 22 });
      expect(nested.entityValue!.properties!.legacy).toMatchObject({ excludeFromIndexes: true, meaning: 15 });
      expect(nested.entityValue!.properties!.deeper.entityValue!.properties!.hidden).toMatchObject({ excludeFromIndexes: true, meaning: 15 });
    }
  });
});
