import { Entity, Key, type Datastore, type RpcEvent } from '../../src/datastore';
import { LocalExecutor } from '../../src/executors';
import { AddFieldData, CopyFieldData, CopyModelData, CopyModelDataToNamespace, DeleteModelData, MapFunctionOnEntities, RemoveFieldData, type Operation } from '../../src/operations';
import { describeEachFlavour } from '../support/emulators';
import { LONG_TEXT, NAMESPACES, controlEntities, readKind, seedMixed, versions } from './dataset';

const PER_NAMESPACE = { '': 3000, 'tenant-b': 2000 }; // 5,000 entities in two namespaces
const TOTAL = 5000;
const BOTH = [...NAMESPACES];

/**
 * Seed 003's playbooks in order on one dataset of 5,000 mixed entities (integer ids, names, children
 * one and two levels below ancestors) in two namespaces. Each step checks its own effect; the steps
 * share the data, so they run in order.
 */
describeEachFlavour('the seven operations on 5,000 mixed entities', (ctx) => {
  let store: Datastore;
  const events: RpcEvent[] = [];
  const executor = new LocalExecutor({ concurrency: 4 });
  const run = (id: string, operation: Operation) => executor.runOperation({ store, job: { namespace: '', id: `ops:${id}` }, operation, migration: `0001_${id}` });

  beforeAll(async () => {
    store = await ctx.connect({ onRpc: (e) => events.push(e) });
    await seedMixed(store, 'Person', PER_NAMESPACE);
  });

  const all = async (kind = 'Person') => (await Promise.all(BOTH.map((ns) => readKind(store, kind, ns)))).flat();

  it('counts before: 5,000 Person entities, 1,500 of them under ancestors', async () => {
    const people = await all();
    expect(people).toHaveLength(TOTAL);
    expect(people.filter((p) => p.key.path.length > 1)).toHaveLength(2500);
  });

  it('AddFieldData fills a field where missing, keeps values present and leaves other properties exactly as they were', async () => {
    const result = await run('add_colour', new AddFieldData('Person', 'colour', { default: 'blue', namespace: BOTH }));
    expect(result).toMatchObject({ scanned: TOTAL, changed: TOTAL - 500, skipped: 500, failed: 0, shardsDone: result.shardsTotal });
    const people = await all();
    expect(people.filter((p) => p.get('colour') === 'red')).toHaveLength(500);
    expect(people.filter((p) => p.get('colour') === 'blue')).toHaveLength(TOTAL - 500);
    const withBio = people.filter((p) => p.has('bio'));
    expect(withBio).toHaveLength(100);
    for (const p of withBio) {
      expect(p.get('bio')).toBe(LONG_TEXT);
      expect(p.isIndexed('bio')).toBe(false);
    }
  });

  it('CopyFieldData copies a property byte for byte and skips entities without it', async () => {
    const result = await run('copy_nickname', new CopyFieldData('Person', 'nickname', 'displayName', { namespace: BOTH }));
    const withNickname = 1000 + 667; // every third of 3,000 and of 2,000
    expect(result).toMatchObject({ scanned: TOTAL, changed: withNickname, skipped: TOTAL - withNickname });
    for (const p of await all()) expect(p.get('displayName')).toBe(p.get('nickname'));
  });

  it('RemoveFieldData removes the property everywhere', async () => {
    const result = await run('remove_nickname', new RemoveFieldData('Person', 'nickname', { namespace: BOTH }));
    expect(result.changed).toBe(1667);
    expect((await all()).filter((p) => p.has('nickname'))).toHaveLength(0);
  });

  it('MapFunctionOnEntities saves what it changes, deletes what it calls ctx.delete() on, writes nothing else', async () => {
    const before = await versions(
      ctx,
      (await all()).map((p) => p.key),
    );
    const result = await run(
      'normalise',
      new MapFunctionOnEntities(
        'Person',
        (person, ctx) => {
          if ((person.get('n') as number) % 100 === 99) return ctx.delete();
          const email = person.get('email') as string;
          if ((person.get('n') as number) % 2 === 0) person.set('email', email.toLowerCase());
        },
        { namespace: BOTH },
      ),
    );
    expect(result).toMatchObject({ scanned: TOTAL, deleted: 50, changed: 2500, skipped: 2450 });
    const people = await all();
    expect(people).toHaveLength(TOTAL - 50);
    for (const p of people) expect(p.get('email')).toBe((p.get('n') as number) % 2 === 0 ? `user${p.get('n')}@example.com` : `User${p.get('n')}@Example.COM`);
    // Entities the function left alone were not written: their versions did not move.
    const after = await versions(
      ctx,
      people.map((p) => p.key),
    );
    for (const p of people) expect(after.get(p.key.toString()) === before.get(p.key.toString())).toBe((p.get('n') as number) % 2 === 1);
  });

  it('CopyModelData keeps ids, names and ancestors, reserves ids and does not overwrite an existing copy', async () => {
    const existing = Entity.from(Key.of('PersonArchive', 1), { marker: 'already here' });
    await store.save([existing]);
    events.length = 0;
    const result = await run('archive', new CopyModelData('Person', 'PersonArchive', { namespace: BOTH }));
    expect(result).toMatchObject({ scanned: TOTAL - 50, changed: TOTAL - 51, skipped: 1 });
    expect(events.some((e) => e.method === 'reserveIds')).toBe(true);
    const sources = await all();
    const copies = new Map((await all('PersonArchive')).map((c) => [c.key.toString(), c]));
    expect(copies.size).toBe(TOTAL - 50);
    for (const p of sources) {
      const copy = copies.get(p.key.withKind('PersonArchive').toString());
      expect(copy).toBeDefined();
      expect(copy!.key.parent?.toString()).toBe(p.key.parent?.toString());
      expect(copy!.key.id ?? copy!.key.name).toBe(p.key.id ?? p.key.name);
      if (copy!.key.toString() !== existing.key.toString()) expect(copy!.toObject()).toEqual(p.toObject());
    }
    expect(copies.get(existing.key.toString())!.get('marker')).toBe('already here');
  });

  it("CopyModelData's reverse deletes the copies it made", async () => {
    const forward = new CopyModelData('Person', 'PersonArchive', { namespace: BOTH });
    expect(forward.reversible).toBe(true);
    const result = await run('archive_reverse', forward.reverse());
    expect(result.deleted).toBe(TOTAL - 50);
    expect(await all('PersonArchive')).toHaveLength(0);
  });

  it('CopyModelDataToNamespace keeps the ancestor path in the new namespace and reports missing parents', async () => {
    const result = await run('to_tenant_c', new CopyModelDataToNamespace('Person', 'tenant-c'));
    expect(result.changed).toBe(3000 - 30);
    // The 1,500 children in '' minus the 30 the map deleted; their Org ancestors were not copied.
    expect(result.warnings).toHaveLength(1);
    expect(result.warnings[0]).toMatch(/^Parent missing in namespace 'tenant-c': 1470 entities \(e\.g\. \[tenant-c\]Org:/);
    const copies = await readKind(store, 'Person', 'tenant-c');
    expect(copies).toHaveLength(3000 - 30);
    const sources = new Map((await readKind(store, 'Person', '')).map((p) => [p.key.path.map((e) => `${e.kind}:${e.id ?? e.name}`).join('/'), p]));
    for (const c of copies) {
      expect(c.key.namespace).toBe('tenant-c');
      expect(sources.get(c.key.path.map((e) => `${e.kind}:${e.id ?? e.name}`).join('/'))!.toObject()).toEqual(c.toObject());
    }
  });

  it('DeleteModelData leaves zero, in every namespace it is given', async () => {
    const result = await run('delete', new DeleteModelData('Person', { namespace: [...BOTH, 'tenant-c'] }));
    expect(result.deleted).toBe(TOTAL - 50 + 3000 - 30);
    for (const ns of [...BOTH, 'tenant-c']) expect(await readKind(store, 'Person', ns)).toHaveLength(0);
  });

  it('keeps its state in two control kinds only', async () => {
    expect(await controlEntities(store)).toBeGreaterThan(0);
  });
});
