import type { google } from '@google-cloud/datastore/build/protos/protos';
import type { Key } from '../../src/datastore';
import type { FlavourContext } from './emulators';
import { rawClient } from './raw-client';

/* Entities written and read by the official client's raw API, never by this package's codec: what a lossless check compares with. */

export type ValueProto = google.datastore.v1.IValue;
type RawEntity = google.datastore.v1.IEntity;

/** Every value type and meaning, nested index exclusions, nulls and empty arrays: written by the official client, never by our codec. */
export const SEED: Record<string, ValueProto> = {
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
  list: { arrayValue: { values: [{ integerValue: '1' }, { stringValue: 'two', excludeFromIndexes: true }, { doubleValue: 3.5 }] } },
  ref: { keyValue: { path: [{ kind: 'Other', name: 'o' }] } },
  keep: { stringValue: 'as it was' },
};

export async function rawSeed(ctx: FlavourContext, projectId: string, keys: readonly Key[], properties: Record<string, ValueProto> = SEED, namespace = ''): Promise<void> {
  const client = rawClient(ctx.host, projectId);
  try {
    const withProject = (v: ValueProto): ValueProto => (v.keyValue ? { ...v, keyValue: { ...v.keyValue, partitionId: { projectId } } } : v);
    const props = Object.fromEntries(Object.entries(properties).map(([n, v]) => [n, withProject(v)]));
    await client.commit({ projectId, mode: 'NON_TRANSACTIONAL', mutations: keys.map((key) => ({ upsert: { key: key.withNamespace(namespace).toProto(projectId), properties: props } })) });
  } finally {
    await client.close();
  }
}

/**
 * The official client's representation and nothing more: it marks the oneof in `valueType`, may hand back
 * 64-bit integers as strings or numbers and blobs as bytes or base64; proto3 cannot tell an unset meaning or
 * excludeFromIndexes from 0/false. Everything else, nested flags included, is compared as stored.
 */
export function normalise(value: ValueProto): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [field, v] of Object.entries(value)) {
    if (field === 'valueType' || v === null || v === undefined) continue;
    if ((field === 'meaning' && v === 0) || (field === 'excludeFromIndexes' && v === false)) continue;
    if (field === 'integerValue') out[field] = String(v);
    else if (field === 'timestampValue') {
      const ts = v as google.protobuf.ITimestamp;
      out[field] = { seconds: String(ts.seconds ?? 0), nanos: ts.nanos ?? 0 };
    } else if (field === 'blobValue') out[field] = typeof v === 'string' ? v : Buffer.from(v as Uint8Array).toString('base64');
    else if (field === 'entityValue') out[field] = { properties: normaliseProperties((v as RawEntity).properties ?? {}) };
    else if (field === 'arrayValue') out[field] = { values: ((v as google.datastore.v1.IArrayValue).values ?? []).map(normalise) };
    else if (field === 'geoPointValue') {
      const g = v as google.type.ILatLng;
      out[field] = { latitude: g.latitude, longitude: g.longitude };
    } else if (field === 'keyValue') {
      const k = v as google.datastore.v1.IKey;
      out[field] = { ns: k.partitionId?.namespaceId ?? '', path: (k.path ?? []).map((e) => [e.kind, e.name || String(e.id)]) };
    } else out[field] = v;
  }
  return out;
}

export function normaliseProperties(properties: Record<string, ValueProto>): Record<string, unknown> {
  return Object.fromEntries(
    Object.keys(properties)
      .sort()
      .map((n) => [n, normalise(properties[n])]),
  );
}
