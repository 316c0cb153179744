import type { google } from '@google-cloud/datastore/build/protos/protos';
import { Entity, Key, type RpcEvent } from '../../src/datastore';
import { describeEachFlavour, type FlavourContext } from '../support/emulators';
import { rawClient } from '../support/raw-client';

/** A raw protobuf lookup that bypasses our codec, so the test sees exactly what Datastore stored. */
async function rawLookup(ctx: FlavourContext, key: Key): Promise<google.datastore.v1.IEntity> {
  const client = rawClient(ctx.host, ctx.projectId);
  try {
    const [response]: [google.datastore.v1.ILookupResponse] = await client.lookup({ projectId: ctx.projectId, keys: [key.toProto(ctx.projectId)] });
    return response.found![0].entity!;
  } finally {
    await client.close();
  }
}

describeEachFlavour('lossless entity I/O', (ctx) => {
  it('keeps untouched unindexed strings and arrays exact when another property is rewritten', async () => {
    const store = await ctx.connect();
    const key = Key.of('Doc', 1);
    const long = 'é'.repeat(1000); // 2,000 bytes of UTF-8
    const tags = Array.from({ length: 20 }, (_, i) => `tag-${i}`);
    await store.save([Entity.from(key, { title: 'old', body: long, tags }, { excludeFromIndexes: ['body', 'tags'] })]);
    const before = await rawLookup(ctx, key);

    const loaded = (await store.get(key))!;
    loaded.set('title', 'new');
    await store.save([loaded]);

    const after = await rawLookup(ctx, key);
    expect(Buffer.byteLength(after.properties!.body.stringValue!)).toBe(2000);
    expect(after.properties!.body).toEqual(before.properties!.body);
    expect(after.properties!.body.excludeFromIndexes).toBe(true);
    expect(after.properties!.tags).toEqual(before.properties!.tags);
    expect(after.properties!.tags.arrayValue!.values).toHaveLength(20);
    expect(after.properties!.tags.arrayValue!.values!.every((v) => v.excludeFromIndexes)).toBe(true);
    expect(after.properties!.title.stringValue).toBe('new');
  });

  it('keeps integers beyond 2^53, meanings, ancestors and namespaces', async () => {
    const store = await ctx.connect();
    const key = Key.of('Org', 'acme', 'Team', 7, 'Person', 9007199254740993n, { namespace: 'tenant-a' });
    const entity = Entity.from(key, { big: 9007199254740993n, small: 42, ratio: 1.5, when: new Date('2024-01-02T03:04:05.678Z') });
    // A property with a meaning set by another client (e.g. a legacy text blob) must survive untouched.
    entity.setRaw('legacy', { stringValue: 'x'.repeat(10), meaning: 15, excludeFromIndexes: true });
    await store.save([entity]);

    const loaded = (await store.get(key))!;
    expect(loaded.key.equals(key)).toBe(true);
    expect(loaded.key.namespace).toBe('tenant-a');
    expect(loaded.key.parent!.toString()).toBe('[tenant-a]Org:"acme"/Team:7');
    expect(loaded.get('big')).toBe(9007199254740993n);
    loaded.set('small', 43);
    await store.save([loaded]);

    const raw = await rawLookup(ctx, key);
    expect(raw.properties!.big.integerValue).toBe('9007199254740993');
    expect(raw.properties!.small.integerValue).toBe('43');
    expect(raw.properties!.ratio.doubleValue).toBe(1.5);
    expect(raw.properties!.legacy.meaning).toBe(15);
    expect(raw.properties!.legacy.excludeFromIndexes).toBe(true);
    expect(raw.key!.path!.map((e) => e.name || e.id)).toEqual(['acme', '7', '9007199254740993']);
    expect(raw.key!.partitionId!.namespaceId).toBe('tenant-a');
  });

  it('splits a 1,200-key lookup and a 1,100-entity save into legal batches on the wire', async () => {
    const events: RpcEvent[] = [];
    const store = await ctx.connect({ onRpc: (e) => events.push(e) });
    const entities = Array.from({ length: 1100 }, (_, i) => Entity.from(Key.of('Batch', i + 1), { n: i }));
    await store.save(entities);
    const commits = events.filter((e) => e.method === 'commit').map((e) => e.mutations);
    expect(commits.sort()).toEqual([100, 500, 500]);

    events.length = 0;
    const keys = Array.from({ length: 1200 }, (_, i) => Key.of('Batch', i + 1));
    const found = await store.lookup(keys);
    const lookups = events.filter((e) => e.method === 'lookup').map((e) => e.keys!);
    expect(Math.max(...lookups)).toBeLessThanOrEqual(1000);
    expect(lookups.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(1200);
    expect(found.filter(Boolean)).toHaveLength(1100);
    expect(found[1150]).toBeUndefined();
  });

  it('splits a save by bytes under the 10 MiB request limit', async () => {
    const events: RpcEvent[] = [];
    const store = await ctx.connect({ onRpc: (e) => events.push(e) });
    const big = 'x'.repeat(900 * 1024);
    await store.save(Array.from({ length: 25 }, (_, i) => Entity.from(Key.of('Big', i + 1), { big }, { excludeFromIndexes: ['big'] })));
    const commits = events.filter((e) => e.method === 'commit');
    expect(commits.length).toBeGreaterThanOrEqual(3);
    for (const c of commits) expect(c.bytes!).toBeLessThanOrEqual(10 * 1024 * 1024);
  });

  it('streams a whole kind with one query start, in key order', async () => {
    const events: RpcEvent[] = [];
    const store = await ctx.connect({ onRpc: (e) => events.push(e) });
    await store.save(Array.from({ length: 700 }, (_, i) => Entity.from(Key.of('Stream', i + 1), { n: i })));
    events.length = 0;
    const seen: Key[] = [];
    for await (const batch of store.keys({ kind: 'Stream', orderByKey: true })) seen.push(...batch);
    expect(seen).toHaveLength(700);
    for (let i = 1; i < seen.length; i++) expect(Key.compare(seen[i - 1], seen[i])).toBeLessThan(0);
    // Firestore mode answers in one page; classic pages at 300 and is continued by cursor, never by offset.
    const pages = events.filter((e) => e.method === 'runQuery').length;
    expect(pages).toBeLessThanOrEqual(ctx.flavour === 'classic' ? 4 : 2);
  });

  it('commits a transaction atomically and learns the entity-group limit where one applies', async () => {
    const store = await ctx.connect();
    const keys = Array.from({ length: 30 }, (_, i) => Key.of('Group', i + 1));
    const attempt = store.transaction(async (tx) => {
      for (const key of keys) tx.upsert(Entity.from(key, { v: 1 }));
    });
    if (ctx.flavour === 'classic') {
      await expect(attempt).rejects.toMatchObject({ code: 'TOO_MANY_ENTITY_GROUPS' });
      expect(store.maxEntityGroupsPerTransaction).toBe(25);
      expect((await store.lookup(keys)).filter(Boolean)).toHaveLength(0);
    } else {
      await attempt;
      expect((await store.lookup(keys)).filter(Boolean)).toHaveLength(30);
    }
  });
});
