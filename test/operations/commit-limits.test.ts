import type { google } from '@google-cloud/datastore/build/protos/protos';
import { Entity, Key, MAX_COMMIT_MUTATIONS, type Datastore, type RpcEvent, type Value } from '../../src/datastore';
import { LocalExecutor } from '../../src/executors';
import { defineModel, field, markerKey, UNIQUE_MARKER_KIND, uniqueFieldsOf } from '../../src/model';
import { AddFieldData, CopyFieldData, CopyModelData, CopyModelDataToNamespace, DeleteModelData, MapFunctionOnEntities, RemoveFieldData, type Operation } from '../../src/operations';
import { describeEachFlavour, uniqueProject, type FlavourContext } from '../support/emulators';
import { rawClient } from '../support/raw-client';

defineModel('Member', { email: field.string({ unique: true }), name: field.string(), counter: field.integer() });
defineModel('MemberCopy', { email: field.string({ unique: true }), name: field.string(), counter: field.integer() });
defineModel('Ticket', { code: field.string({ unique: true }), n: field.integer() });

/** More than a default batch (499) of entities: one marker each makes a batch of them 999 mutations. */
const N = 600;

/** Roots and children of one parent: every batch sees both, and on the classic backend's group limit, both count differently. */
const keyOf = (kind: string, i: number, namespace = '') => (i % 3 === 0 ? Key.of(kind, i + 1, { namespace }) : Key.of('Club', 'c', kind, `m${i}`, { namespace }));

/** Saves the entities and, as the model would, a marker per unique value they hold. */
async function seed(store: Datastore, kind: string, values: (i: number) => Record<string, Value>, n = N): Promise<Key[]> {
  const unique = uniqueFieldsOf(kind)!;
  const entities = Array.from({ length: n }, (_, i) => Entity.from(keyOf(kind, i), values(i)));
  const markers = entities.flatMap((e) =>
    unique.fields.flatMap((name) => {
      const value = unique.valueOf(e, name);
      return value ? [Entity.from(markerKey(e.key, value), { kind, field: name, owner: e.key })] : [];
    }),
  );
  await store.save([...entities, ...markers]);
  return entities.map((e) => e.key);
}

/**
 * The markers of `kind.name` in a namespace are exactly those its entities need: every marker is owned by an
 * existing entity that holds its value, and every entity holding a value owns its marker. Returns how many.
 */
async function checkMarkers(store: Datastore, kind: string, name: string, namespace = ''): Promise<number> {
  const unique = uniqueFieldsOf(kind)!;
  const needed = new Map<string, string>();
  for await (const e of store.query({ kind, namespace })) {
    const value = unique.valueOf(e, name);
    if (value) needed.set(markerKey(e.key, value).toString(), e.key.toString());
  }
  const found = new Map<string, string>();
  for await (const m of store.query({ kind: UNIQUE_MARKER_KIND, namespace })) if (m.get('kind') === kind && m.get('field') === name) found.set(m.key.toString(), String(m.get('owner')));
  expect(found).toEqual(needed);
  return found.size;
}

type RawEntity = google.datastore.v1.IEntity;

/** Every entity of a kind as Datastore stored it (the official client's protobuf), by its key path without kinds. */
async function rawKind(ctx: FlavourContext, projectId: string, kind: string, namespace = ''): Promise<Map<string, RawEntity>> {
  const client = rawClient(ctx.host, projectId);
  try {
    const out = new Map<string, RawEntity>();
    let startCursor: Uint8Array | string | undefined;
    for (;;) {
      const [response] = (await client.runQuery({ projectId, partitionId: { projectId, namespaceId: namespace }, query: { kind: [{ name: kind }], startCursor } })) as unknown as [
        google.datastore.v1.IRunQueryResponse,
      ];
      const batch = response.batch!;
      for (const { entity } of batch.entityResults ?? []) out.set(JSON.stringify(entity!.key!.path!.map((e) => e.name || String(e.id))), entity!);
      if (String(batch.moreResults) === 'NO_MORE_RESULTS' || !batch.entityResults?.length) return out;
      startCursor = batch.endCursor!;
    }
  } finally {
    await client.close();
  }
}

describeEachFlavour('batches cut by what they commit', (ctx) => {
  let events: RpcEvent[];
  let projectId: string;

  async function fresh(): Promise<Datastore> {
    events = [];
    projectId = uniqueProject('l');
    return ctx.connect({ projectId, onRpc: (e) => events.push(e) });
  }

  const run = (store: Datastore, operation: Operation, id: string) => new LocalExecutor({ concurrency: 2 }).runOperation({ store, job: { namespace: '', id }, operation, migration: id });

  /** Every transactional commit kept to the limits. */
  function checkCommits(store: Datastore): void {
    const commits = events.filter((e) => e.method === 'commit' && e.transactional);
    expect(commits.length).toBeGreaterThan(1);
    for (const commit of commits) {
      expect(commit.mutations).toBeLessThanOrEqual(MAX_COMMIT_MUTATIONS);
      expect(commit.bytes).toBeLessThanOrEqual(store.maxRequestBytes);
    }
  }

  /**
   * Within the limits, and cut by what they commit rather than by count: filled up to the mutation limit where
   * no entity-group limit cuts them first; under that limit (classic), formed with their markers' groups counted,
   * so that no transaction fails but the one that teaches the store the limit.
   */
  function checkFullCommits(store: Datastore): void {
    checkCommits(store);
    const most = Math.max(...events.filter((e) => e.method === 'commit' && e.transactional).map((c) => c.mutations!));
    if (ctx.flavour === 'firestore') expect(most).toBeGreaterThan(MAX_COMMIT_MUTATIONS * 0.9);
    expect(events.filter((e) => e.method === 'rollback').length).toBeLessThanOrEqual(ctx.flavour === 'classic' ? 1 : 0);
  }

  it('AddFieldData into a unique field, at the default batch size', async () => {
    const store = await fresh();
    await seed(store, 'Ticket', (i) => ({ n: i }));
    const result = await run(store, new AddFieldData('Ticket', 'code', { default: (e) => `T-${String(e.get('n'))}`, shardCount: 1 }), 'add#0.0');
    expect(result).toMatchObject({ scanned: N, changed: N, failed: 0 });
    expect(await checkMarkers(store, 'Ticket', 'code')).toBe(N);
    checkFullCommits(store);
  });

  it('RemoveFieldData of a unique field, at the default batch size', async () => {
    const store = await fresh();
    await seed(store, 'Member', (i) => ({ email: `m${i}@x.org`, name: `n${i}` }));
    expect(await checkMarkers(store, 'Member', 'email')).toBe(N);
    const result = await run(store, new RemoveFieldData('Member', 'email', { shardCount: 1 }), 'rm#0.0');
    expect(result).toMatchObject({ scanned: N, changed: N });
    expect(await checkMarkers(store, 'Member', 'email')).toBe(0);
    const raw = await rawKind(ctx, projectId, 'Member');
    expect([...raw.values()].filter((e) => 'email' in (e.properties ?? {}))).toEqual([]);
    expect([...raw.values()].filter((e) => e.properties?.name?.stringValue?.startsWith('n'))).toHaveLength(N);
    checkFullCommits(store);
  });

  it('CopyFieldData into a unique field, at the default batch size', async () => {
    const store = await fresh();
    await seed(store, 'Member', (i) => ({ legacyEmail: `l${i}@x.org`, name: `n${i}` }));
    const result = await run(store, new CopyFieldData('Member', 'legacyEmail', 'email', { shardCount: 1 }), 'copyfield#0.0');
    expect(result).toMatchObject({ scanned: N, changed: N });
    expect(await checkMarkers(store, 'Member', 'email')).toBe(N);
    for (const e of (await rawKind(ctx, projectId, 'Member')).values()) expect(e.properties!.email).toEqual(e.properties!.legacyEmail);
    checkFullCommits(store);
  });

  it('DeleteModelData of a kind with a unique field, at the default batch size', async () => {
    const store = await fresh();
    await seed(store, 'Member', (i) => ({ email: `m${i}@x.org`, name: `n${i}` }));
    const result = await run(store, new DeleteModelData('Member', { shardCount: 1 }), 'del#0.0');
    expect(result).toMatchObject({ scanned: N, deleted: N });
    expect((await rawKind(ctx, projectId, 'Member')).size).toBe(0);
    expect(await checkMarkers(store, 'Member', 'email')).toBe(0);
    checkFullCommits(store);
  });

  it('CopyModelData into a kind whose model has a unique field, at the default batch size, byte for byte', async () => {
    const store = await fresh();
    await seed(store, 'Member', (i) => ({ email: `m${i}@x.org`, name: `n${i}`, counter: i }));
    const result = await run(store, new CopyModelData('Member', 'MemberCopy', { shardCount: 1 }), 'copy#0.0');
    expect(result).toMatchObject({ scanned: N, changed: N });
    expect(await checkMarkers(store, 'MemberCopy', 'email')).toBe(N);
    expect(await checkMarkers(store, 'Member', 'email')).toBe(N);
    const sources = await rawKind(ctx, projectId, 'Member');
    const copies = await rawKind(ctx, projectId, 'MemberCopy');
    expect(copies.size).toBe(N);
    for (const [path, source] of sources) expect(copies.get(path)?.properties).toEqual(source.properties);
    checkFullCommits(store);
  });

  it('CopyModelDataToNamespace of a kind with a unique field, at the default batch size, byte for byte', async () => {
    const store = await fresh();
    await seed(store, 'Member', (i) => ({ email: `m${i}@x.org`, name: `n${i}` }));
    await store.save([Entity.from(Key.of('Club', 'c', { namespace: 'elsewhere' }), {})]);
    const result = await run(store, new CopyModelDataToNamespace('Member', 'elsewhere', { shardCount: 1 }), 'ns#0.0');
    expect(result).toMatchObject({ scanned: N, changed: N, warnings: [] });
    expect(await checkMarkers(store, 'Member', 'email', 'elsewhere')).toBe(N);
    expect(await checkMarkers(store, 'Member', 'email')).toBe(N);
    const sources = await rawKind(ctx, projectId, 'Member');
    const copies = await rawKind(ctx, projectId, 'Member', 'elsewhere');
    expect(copies.size).toBe(N);
    for (const [path, source] of sources) expect(copies.get(path)?.properties).toEqual(source.properties);
    checkFullCommits(store);
  });

  it('MapFunctionOnEntities changing unique values (a marker dropped and one claimed each), at the default batch size, exactly once', async () => {
    const store = await fresh();
    await seed(store, 'Member', (i) => ({ email: `m${i}@x.org`, name: `n${i}`, counter: 0 }));
    const rename = new MapFunctionOnEntities(
      'Member',
      (e) => {
        e.set('email', `new-${String(e.get('email'))}`);
        e.set('counter', Number(e.get('counter')) + 1);
      },
      { shardCount: 1 },
    );
    const result = await run(store, rename, 'map#0.0');
    expect(result).toMatchObject({ scanned: N, changed: N });
    expect(await checkMarkers(store, 'Member', 'email')).toBe(N);
    const raw = await rawKind(ctx, projectId, 'Member');
    expect([...raw.values()].map((e) => [String(e.properties!.counter.integerValue), /^new-m\d+@x\.org$/.test(e.properties!.email.stringValue!)])).toEqual(Array(N).fill(['1', true]));
    checkFullCommits(store);
  });

  it('completes a kind whose batches would exceed the request limit if cut by count (200 KB entities), reading each entity about once', async () => {
    const store = await fresh();
    const n = 120;
    const payload = (i: number) => Buffer.alloc(200_000, i % 251);
    for (let i = 0; i < n; i += 10) {
      await store.save(Array.from({ length: Math.min(10, n - i) }, (_, j) => Entity.from(keyOf('Doc', i + j), { n: i + j + 1, payload: payload(i + j) }, { excludeFromIndexes: ['payload'] })));
    }
    expect(n * 200_000).toBeGreaterThan(10 * 1024 * 1024);
    const mark = new MapFunctionOnEntities('Doc', (e) => void e.set('n', -Number(e.get('n'))), { shardCount: 1 });
    events = [];
    const result = await run(store, mark, 'big#0.0');
    expect(result).toMatchObject({ scanned: n, changed: n });
    checkCommits(store);
    // A batch is formed by what its commit can hold: entities are not read in a transaction only to be put back.
    const read = events.filter((e) => e.method === 'lookup' && e.transactional).reduce((sum, e) => sum + e.keys!, 0);
    expect(read).toBeLessThan(3 * n);
    const raw = await rawKind(ctx, projectId, 'Doc');
    expect(raw.size).toBe(n);
    for (const e of raw.values()) {
      const i = -Number(e.properties!.n.integerValue) - 1;
      expect(Buffer.from(e.properties!.payload.blobValue as Uint8Array).equals(payload(i))).toBe(true);
    }
  });

  it('fails naming the key, kind and operation when a map makes an entity over 1 MiB, and writes nothing of that batch', async () => {
    const store = await fresh();
    await store.save(Array.from({ length: 30 }, (_, i) => Entity.from(Key.of('Note', i + 1), { n: i + 1 })));
    // Two halves of 600 KB: each property is within Datastore's limit, the entity is not.
    const grow = new MapFunctionOnEntities(
      'Note',
      (e) => {
        if (e.key.id === '17') for (const half of ['a', 'b']) e.set(half, Buffer.alloc(600_000, 1), { indexed: false });
        e.set('n', -Number(e.get('n')));
      },
      { shardCount: 1, batchSize: 10 },
    );
    await expect(run(store, grow, 'grow#0.0')).rejects.toMatchObject({
      code: 'OPERATION_FAILED',
      message: expect.stringMatching(/MapFunctionOnEntities on Note .*Note:17.* 1,048,572 bytes/),
      context: { key: 'Note:17', kind: 'Note', operation: 'MapFunctionOnEntities', migration: 'grow#0.0' },
    });
    const raw = await rawKind(ctx, projectId, 'Note');
    const changed = [...raw.values()].filter((e) => Number(e.properties!.n.integerValue) < 0).map((e) => Number(e.key!.path![0].id));
    expect(changed.sort((a, b) => a - b)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    expect([...raw.values()].some((e) => 'a' in (e.properties ?? {}))).toBe(false);
  });
});
