import path from 'node:path';
import type { google } from '@google-cloud/datastore/build/protos/protos';
import { Entity, Key, type Datastore } from '../../src/datastore';
import { LocalExecutor } from '../../src/executors';
import { loadGraph, migrate, type MigrationGraph } from '../../src/migrations';
import { tempApp } from '../support/cli';
import { describeEachFlavour, type FlavourContext } from '../support/emulators';
import { rawClient } from '../support/raw-client';
import { inProcessWorker, runThroughTasks, startTasks, type TasksHarness } from '../worker/support/harness';

type RawEntity = google.datastore.v1.IEntity;

/** Every value type and meaning Datastore stores, as raw protobuf: what no operation may change unless it touches it. */
const RICH: Record<string, google.datastore.v1.IValue> = {
  big: { integerValue: '9007199254740993' },
  negative: { integerValue: '-9223372036854775808' },
  micros: { timestampValue: { seconds: 1700000000, nanos: 123456000 } },
  blob: { blobValue: Buffer.from([0, 1, 2, 254, 255]), excludeFromIndexes: true },
  geo: { geoPointValue: { latitude: 51.5074, longitude: -0.1278 } },
  nested: {
    entityValue: {
      properties: { inner: { stringValue: 'x'.repeat(1600), excludeFromIndexes: true }, n: { integerValue: '7' }, deeper: { entityValue: { properties: { flag: { booleanValue: true } } } } },
    },
    excludeFromIndexes: true,
  },
  nothing: { nullValue: 'NULL_VALUE' },
  emptyList: { arrayValue: { values: [] } },
  mixedList: { arrayValue: { values: [{ integerValue: '1' }, { stringValue: 'two', excludeFromIndexes: true }, { doubleValue: 3.5 }] } },
  legacyText: { stringValue: 'legacy', meaning: 15, excludeFromIndexes: true },
  ratio: { doubleValue: 0.1 },
  ref: { keyValue: { partitionId: {}, path: [{ kind: 'Other', name: 'o1' }] } },
  source: { stringValue: 'copy me' },
  old: { stringValue: 'remove me' },
};
/** What the operations below do touch. */
const TOUCHED = ['added', 'old', 'copied', 'mapped'];

const OPERATIONS = `
import { defineMigration, AddFieldData, RemoveFieldData, CopyFieldData, MapFunctionOnEntities, CopyModelData, CopyModelDataToNamespace } from 'datastore-migrate';
export default defineMigration({
  operations: [
    new AddFieldData('Rich', 'added', { default: 'yes' }),
    new RemoveFieldData('Rich', 'old'),
    new CopyFieldData('Rich', 'source', 'copied'),
    new MapFunctionOnEntities('Rich', (e) => void e.set('mapped', 1)),
    new CopyModelData('Rich', 'RichCopy'),
    new CopyModelDataToNamespace('Rich', 'rich-ns'),
  ],
});
`;

const N = 6;
const keys = Array.from({ length: N }, (_, i) => (i % 2 ? Key.of('Rich', i + 1) : Key.of('Holder', 'h', 'Rich', `r${i}`)));

async function rawLookup(ctx: FlavourContext, projectId: string, lookup: Key[]): Promise<Map<string, RawEntity>> {
  const client = rawClient(ctx.host, projectId);
  try {
    const [response]: [google.datastore.v1.ILookupResponse] = await client.lookup({ projectId, keys: lookup.map((k) => k.toProto(projectId)) });
    const out = new Map<string, RawEntity>();
    for (const found of response.found ?? []) out.set(JSON.stringify(found.entity!.key!.path!.map((e) => [e.kind, e.name || String(e.id)])), found.entity!);
    return out;
  } finally {
    await client.close();
  }
}

const pathOf = (k: Key) => JSON.stringify(k.path.map((e) => [e.kind, e.name ?? String(e.id)]));
const untouched = (e: RawEntity) => Object.fromEntries(Object.entries(e.properties ?? {}).filter(([name]) => !TOUCHED.includes(name)));

async function seed(store: Datastore): Promise<void> {
  await store.save(
    keys.map((key) => {
      const e = Entity.from(key, {});
      for (const [name, value] of Object.entries(RICH)) e.setRaw(name, value);
      return e;
    }),
  );
}

/**
 * For every operation, locally and through the worker: the properties an operation does not touch come
 * back byte for byte, compared as raw protobuf read by a client that bypasses our codec.
 */
describeEachFlavour('operations are lossless on every value type', (ctx) => {
  let h: TasksHarness;
  let graph: MigrationGraph;
  beforeAll(async () => {
    h = await startTasks();
    graph = await loadGraph([{ app: 'default', dir: path.join(tempApp({ 'migrations/0001_all.ts': OPERATIONS }), 'migrations') }]);
  });
  afterAll(() => h.close());

  async function expectLossless(before: Map<string, RawEntity>, projectId: string): Promise<void> {
    const after = await rawLookup(ctx, projectId, keys);
    const copies = await rawLookup(
      ctx,
      projectId,
      keys.map((k) => new Key(k.path.map((e) => ({ ...e, kind: e.kind === 'Rich' ? 'RichCopy' : e.kind })))),
    );
    const moved = await rawLookup(
      ctx,
      projectId,
      keys.map((k) => new Key(k.path, 'rich-ns')),
    );
    expect(after.size).toBe(N);
    expect(copies.size).toBe(N);
    expect(moved.size).toBe(N);
    for (const key of keys) {
      const was = before.get(pathOf(key))!;
      const now = after.get(pathOf(key))!;
      expect(untouched(now)).toEqual(untouched(was));
      expect(now.properties!.old).toBeUndefined();
      expect(now.properties!.added.stringValue).toBe('yes');
      expect(now.properties!.copied).toEqual(was.properties!.source);
      expect(now.properties!.mapped.integerValue).toBe('1');
      const copyPath = JSON.stringify(key.path.map((e) => [e.kind === 'Rich' ? 'RichCopy' : e.kind, e.name ?? String(e.id)]));
      expect(copies.get(copyPath)!.properties).toEqual(now.properties);
      expect(moved.get(pathOf(key))!.properties).toEqual(now.properties);
    }
  }

  it('through the local executor', async () => {
    const projectId = `${ctx.projectId}-local`;
    const store = await ctx.connect({ projectId });
    await seed(store);
    const before = await rawLookup(ctx, projectId, keys);
    expect(before.size).toBe(N);
    await migrate({ store, graph, executor: new LocalExecutor() });
    await expectLossless(before, projectId);
  });

  it('through Cloud Tasks and the worker', async () => {
    const projectId = `${ctx.projectId}-tasks`;
    const store = await ctx.connect({ projectId });
    await seed(store);
    const before = await rawLookup(ctx, projectId, keys);
    const worker = await inProcessWorker(h, store, graph);
    try {
      const { run } = await runThroughTasks(h, store, graph, worker.url);
      expect(run?.status).toBe('done');
      await expectLossless(before, projectId);
    } finally {
      await worker.stop();
    }
  });
});
