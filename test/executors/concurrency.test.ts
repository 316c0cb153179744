import { Entity, Key, type Datastore, type RpcEvent } from '../../src/datastore';
import { LocalExecutor } from '../../src/executors';
import { AddFieldData, CopyModelData, CopyModelDataToNamespace } from '../../src/operations';
import { readKind } from '../operations/dataset';
import { describeEachFlavour } from '../support/emulators';

const N = 800;

async function seedRoots(store: Datastore, kind: string, n: number): Promise<Key[]> {
  const entities = Array.from({ length: n }, (_, i) => Entity.from(i % 2 ? Key.of(kind, i + 1) : Key.of(kind, `r${i}`), { n: i }));
  await store.save(entities);
  return entities.map((e) => e.key);
}

describeEachFlavour('the engine under concurrent writers and entity-group limits', (ctx) => {
  it('keeps every write of an application updating random entities during an AddFieldData (no lost updates)', async () => {
    const store = await ctx.connect();
    const keys = await seedRoots(store, 'Live', N);
    const lastWrite = new Map<string, number>();
    let running = true;
    let during = 0;
    // The application: read-modify-write in a transaction, as any correct writer does.
    const writer = (async () => {
      for (let i = 1; running || i < 40; i++) {
        const key = keys[(i * 7919) % keys.length];
        await store.transaction(async (tx) => {
          const entity = (await tx.get(key))!;
          entity.set('appValue', i);
          tx.upsert(entity);
        });
        lastWrite.set(key.toString(), i);
        if (running) during++;
      }
    })();
    const result = await new LocalExecutor({ concurrency: 2 }).runOperation({
      store,
      job: { namespace: '', id: 'live#1' },
      operation: new AddFieldData('Live', 'colour', { default: 'blue', batchSize: 20 }),
    });
    running = false;
    await writer;
    expect(result.scanned).toBe(N);
    expect(during).toBeGreaterThan(5);
    const entities = await readKind(store, 'Live');
    expect(entities.every((e) => e.get('colour') === 'blue')).toBe(true);
    for (const e of entities) expect(e.get('appValue')).toBe(lastWrite.get(e.key.toString()));
  });

  it('never puts more than 25 entity groups, the checkpoint included, in a transaction when that is set', async () => {
    const events: RpcEvent[] = [];
    const store = await ctx.connect({ maxEntityGroupsPerTransaction: 25, onRpc: (e) => events.push(e) });
    await seedRoots(store, 'Grouped', 300);
    // Every source is its own root and so is every copy: 12 of each, plus the checkpoint, make 25.
    const result = await new LocalExecutor().runOperation({ store, job: { namespace: '', id: 'groups#1' }, operation: new CopyModelDataToNamespace('Grouped', 'copies') });
    expect(result.changed).toBe(300);
    const commits = events.filter((e) => e.method === 'commit' && e.transactional).map((e) => e.mutations!);
    expect(Math.max(...commits)).toBe(13);
    expect(events.some((e) => e.method === 'rollback')).toBe(false);
    expect(await readKind(store, 'Grouped', 'copies')).toHaveLength(300);
  });

  if (ctx.flavour === 'classic') {
    it('learns the classic limit from the first rejected transaction and re-splits the batch', async () => {
      const events: RpcEvent[] = [];
      const store = await ctx.connect({ onRpc: (e) => events.push(e) });
      expect(store.maxEntityGroupsPerTransaction).toBeUndefined();
      await seedRoots(store, 'Learned', 300);
      const result = await new LocalExecutor({ concurrency: 1 }).runOperation({
        store,
        job: { namespace: '', id: 'learn#1' },
        operation: new CopyModelData('Learned', 'LearnedCopy', { shardCount: 1 }),
      });
      expect(store.maxEntityGroupsPerTransaction).toBe(25);
      expect(result).toMatchObject({ scanned: 300, changed: 300 });
      expect(events.filter((e) => e.method === 'rollback')).toHaveLength(1);
      expect(await readKind(store, 'LearnedCopy')).toHaveLength(300);
    });
  }
});
