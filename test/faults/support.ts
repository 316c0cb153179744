import type { google } from '@google-cloud/datastore/build/protos/protos';
import type { DatastoreProxy, DatastoreProxyOptions } from '../../emulator/datastore-proxy';
import { FAULT_CODES } from '../../emulator/datastore-proxy/options';
import { Entity, Key, type Datastore } from '../../src/datastore';
import { rawClient } from '../support/raw-client';

/**
 * Shared by the tests of test/faults: 5% faults on every RPC type the proxy can fail, with every code, from a
 * fixed seed. The after-commit codes apply to commits alone, so they get a larger share to meet enough of
 * them in a few hundred commits. Concurrent callers can reach the proxy in a different order from one run to
 * the next, so which RPC meets which fault varies; the shares do not.
 */
export const FAULTS: Omit<DatastoreProxyOptions, 'target'> = {
  faultFraction: 0.05,
  faultShares: { aborted: 1, unavailable: 1, 'resource-exhausted': 1, 'deadline-exceeded': 1, 'deadline-after-commit': 3, 'unavailable-after-commit': 3 },
  seed: 23,
};

/** Short backoffs for stores a test opens itself: the faults are many and a test is meant to take seconds. */
export const FAST_RETRY = { baseDelayMs: 5, maxDelayMs: 100 };

/** The fault codes the proxy has not answered yet, and the `methods` it has answered none of. */
export function missingFaults(proxy: DatastoreProxy, methods: readonly string[] = ['Lookup', 'BeginTransaction', 'Commit']): string[] {
  const { injected } = proxy.counts();
  const codes = new Set(Object.values(injected).flatMap((perCode) => Object.keys(perCode ?? {})));
  return [...FAULT_CODES.filter((code) => !codes.has(code)), ...methods.filter((m) => !(m in injected))];
}

/**
 * Asserts that the proxy answered every fault code at least once, and faults to each of `methods` (the RPCs a
 * test makes hundreds of: queries and rollbacks are too few in some tests for 5% to be sure to meet them).
 */
export function expectEveryFault(proxy: DatastoreProxy, methods?: readonly string[]): void {
  expect(missingFaults(proxy, methods)).toEqual([]);
}

export type RawEntity = google.datastore.v1.IEntity;

/** Every value type and meaning Datastore stores, as raw protobuf: what no operation may change unless it touches it. */
export const RICH: Record<string, google.datastore.v1.IValue> = {
  big: { integerValue: '9007199254740993' },
  micros: { timestampValue: { seconds: 1700000000, nanos: 123456000 } },
  blob: { blobValue: Buffer.from([0, 1, 2, 254, 255]), excludeFromIndexes: true },
  geo: { geoPointValue: { latitude: 51.5074, longitude: -0.1278 } },
  nested: {
    entityValue: { properties: { inner: { stringValue: 'x'.repeat(1600), excludeFromIndexes: true }, n: { integerValue: '7' } } },
    excludeFromIndexes: true,
  },
  nothing: { nullValue: 'NULL_VALUE' },
  mixedList: { arrayValue: { values: [{ integerValue: '1' }, { stringValue: 'two', excludeFromIndexes: true }, { doubleValue: 3.5 }] } },
  legacyText: { stringValue: 'legacy', meaning: 15, excludeFromIndexes: true },
  source: { stringValue: 'copy me' },
  old: { stringValue: 'remove me' },
};
/** The properties the seven operations touch. */
const TOUCHED = ['added', 'old', 'copied', 'count'];

/** The seven operations over `Rich` (and `Doomed` for the delete), in one migration. */
export const SEVEN_OPERATIONS = `
import { defineMigration, AddFieldData, RemoveFieldData, CopyFieldData, DeleteModelData, MapFunctionOnEntities, CopyModelData, CopyModelDataToNamespace } from 'datastore-migrate';
const small = { batchSize: 10, shardCount: 3 };
export default defineMigration({
  operations: [
    new AddFieldData('Rich', 'added', { default: 'yes', ...small }),
    new RemoveFieldData('Rich', 'old', small),
    new CopyFieldData('Rich', 'source', 'copied', small),
    new MapFunctionOnEntities('Rich', (e) => void e.set('count', Number(e.get('count') ?? 0) + 1), small),
    new DeleteModelData('Doomed', small),
    new CopyModelData('Rich', 'RichCopy', small),
    new CopyModelDataToNamespace('Rich', 'rich-ns', small),
  ],
});
`;

/** How many Rich entities the operations tests seed, and Doomed ones for the delete. */
export const N = 180;
export const DOOMED = 90;
/** Per operation of SEVEN_OPERATIONS, in order: its index, then changed, deleted and failed as the run counts them. */
export const EXPECTED_COUNTS = [0, 1, 2, 3, 4, 5, 6].map((op) => (op === 4 ? [op, 0, DOOMED, 0] : [op, N, 0, 0]));

/** Rich entities: root keys by id and name, and children of a few holders (parent keys must survive the copies). */
export function richKeys(n: number): Key[] {
  return Array.from({ length: n }, (_, i) => (i % 3 === 0 ? Key.of('Holder', `h${i % 4}`, 'Rich', `r${i}`) : i % 3 === 1 ? Key.of('Rich', i + 1) : Key.of('Rich', `r${i}`)));
}

export async function seedRich(store: Datastore, keys: readonly Key[], doomed: number): Promise<void> {
  await store.save(
    keys.map((key) => {
      const e = Entity.from(key, {});
      for (const [name, value] of Object.entries(RICH)) e.setRaw(name, value);
      return e;
    }),
  );
  await store.save(Array.from({ length: doomed }, (_, i) => Entity.from(Key.of('Doomed', `d${i}`), { n: i })));
}

export const pathOf = (k: Key): string => JSON.stringify(k.path.map((e) => [e.kind, e.name ?? String(e.id)]));
const protoPath = (e: RawEntity): string => JSON.stringify(e.key!.path!.map((p) => [p.kind, p.name || String(p.id)]));

/** Entities as Datastore stored them, read by the official low-level client (bypassing this package's codec), straight from the emulator. */
export async function rawLookup(emulatorHost: string, projectId: string, keys: readonly Key[]): Promise<Map<string, RawEntity>> {
  const client = rawClient(emulatorHost, projectId);
  try {
    const out = new Map<string, RawEntity>();
    for (let i = 0; i < keys.length; i += 500) {
      const [response]: [google.datastore.v1.ILookupResponse] = await client.lookup({ projectId, keys: keys.slice(i, i + 500).map((k) => k.toProto(projectId)) });
      expect(response.deferred ?? []).toEqual([]);
      for (const found of response.found ?? []) out.set(protoPath(found.entity!), found.entity!);
    }
    return out;
  } finally {
    await client.close();
  }
}

/** Counts a kind's entities straight from the emulator (keys only). */
export async function rawCount(emulatorHost: string, projectId: string, kind: string, namespace = ''): Promise<number> {
  const client = rawClient(emulatorHost, projectId);
  try {
    let n = 0;
    let cursor: Uint8Array | string | undefined;
    for (;;) {
      const [response]: [google.datastore.v1.IRunQueryResponse] = await client.runQuery({
        projectId,
        partitionId: { namespaceId: namespace },
        query: { kind: [{ name: kind }], projection: [{ property: { name: '__key__' } }], startCursor: cursor },
      });
      const batch = response.batch!;
      n += batch.entityResults?.length ?? 0;
      if (!batch.entityResults?.length || String(batch.moreResults) === 'NO_MORE_RESULTS') return n;
      cursor = batch.endCursor ?? undefined;
    }
  } finally {
    await client.close();
  }
}

const untouched = (e: RawEntity) => Object.fromEntries(Object.entries(e.properties ?? {}).filter(([name]) => !TOUCHED.includes(name)));

/**
 * After the seven operations ran once: every Rich entity has `added`, `copied`, no `old`, `count` exactly 1,
 * every other property as `before` (read raw after seeding), value, type, meaning and index exclusion; the copies in RichCopy and in namespace rich-ns equal it
 * (parent keys kept); Doomed is empty.
 */
export async function expectSevenExact(emulatorHost: string, projectId: string, keys: readonly Key[], before: Map<string, RawEntity>): Promise<void> {
  const after = await rawLookup(emulatorHost, projectId, keys);
  const copies = await rawLookup(
    emulatorHost,
    projectId,
    keys.map((k) => new Key(k.path.map((e) => ({ ...e, kind: e.kind === 'Rich' ? 'RichCopy' : e.kind })))),
  );
  const moved = await rawLookup(
    emulatorHost,
    projectId,
    keys.map((k) => new Key(k.path, 'rich-ns')),
  );
  expect([after.size, copies.size, moved.size]).toEqual([keys.length, keys.length, keys.length]);
  let wrong = 0;
  for (const key of keys) {
    const now = after.get(pathOf(key))!;
    const expected = untouched(before.get(pathOf(key))!);
    const copyPath = JSON.stringify(key.path.map((e) => [e.kind === 'Rich' ? 'RichCopy' : e.kind, e.name ?? String(e.id)]));
    const exact =
      JSON.stringify(untouched(now)) === JSON.stringify(expected) &&
      now.properties!.old === undefined &&
      now.properties!.added?.stringValue === 'yes' &&
      JSON.stringify(now.properties!.copied) === JSON.stringify(now.properties!.source) &&
      now.properties!.count?.integerValue === '1' &&
      JSON.stringify(copies.get(copyPath)?.properties) === JSON.stringify(now.properties) &&
      JSON.stringify(moved.get(pathOf(key))?.properties) === JSON.stringify(now.properties);
    if (!exact) {
      // The first difference, shown in full.
      if (wrong === 0) {
        expect(untouched(now)).toEqual(expected);
        expect(now.properties!.count).toEqual(expect.objectContaining({ integerValue: '1' }));
        expect(copies.get(copyPath)?.properties).toEqual(now.properties);
        expect(moved.get(pathOf(key))?.properties).toEqual(now.properties);
      }
      wrong++;
    }
  }
  expect(wrong).toBe(0);
  expect(await rawCount(emulatorHost, projectId, 'Doomed')).toBe(0);
  expect(await rawCount(emulatorHost, projectId, 'Rich')).toBe(keys.length);
  expect(await rawCount(emulatorHost, projectId, 'RichCopy')).toBe(keys.length);
  expect(await rawCount(emulatorHost, projectId, 'Rich', 'rich-ns')).toBe(keys.length);
}
