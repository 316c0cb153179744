import { Entity, Key, type RpcEvent } from '../../src/datastore';
import { LocalExecutor } from '../../src/executors';
import { RemoveFieldData } from '../../src/operations';
import { describeEachFlavour, uniqueProject } from '../support/emulators';
import { images } from './support';

describeEachFlavour('undo within the limits of a commit', (ctx) => {
  it('an entity too large to keep beside its change fails the batch naming the key and how to turn undo off, and writes nothing', async () => {
    const store = await ctx.connect({ projectId: uniqueProject('big') });
    // Under Datastore's 1 MiB per entity by a few hundred bytes: its image, with its own key and fields, is over.
    await store.save([Entity.from(Key.of('Big', 1), { blob: Buffer.alloc(1_048_300, 7), small: 1 }, { excludeFromIndexes: ['blob'] })]);
    const run = new LocalExecutor().runOperation({
      store,
      job: { namespace: '', id: 'default:0001_big#0.0' },
      operation: new RemoveFieldData('Big', 'small', { undo: true }),
      migration: 'default:0001_big',
    });
    await expect(run).rejects.toThrow(/Big:1 is too large to keep its before-image beside its change \([\d,]+ bytes.*turn undo off for operation default:0001_big#0/);
    expect((await store.get(Key.of('Big', 1)))!.get('small')).toBe(1);
    expect(await images(store)).toEqual([]);
  });
});

describeEachFlavour('undo batches', (ctx) => {
  it('stay within 500 mutations with the images counted, and on the classic backend within 25 entity groups', async () => {
    const events: RpcEvent[] = [];
    // Told the classic limit rather than learning it from a first refused commit (a rollback).
    const store = await ctx.connect({ projectId: uniqueProject('lim'), onRpc: (e) => events.push(e), ...(ctx.flavour === 'classic' ? { maxEntityGroupsPerTransaction: 25 } : {}) });
    await store.save(Array.from({ length: 600 }, (_, i) => Entity.from(Key.of('Many', i + 1), { f: i, g: 'x' })));
    const result = await new LocalExecutor().runOperation({
      store,
      job: { namespace: '', id: 'default:0001_many#0.0' },
      operation: new RemoveFieldData('Many', 'f', { undo: true }),
      migration: 'default:0001_many',
    });
    expect(result.changed).toBe(600);
    expect((await images(store)).length).toBe(600);
    const commits = events.filter((e) => e.method === 'commit' && e.transactional).map((e) => e.mutations!);
    expect(Math.max(...commits)).toBeLessThanOrEqual(500);
    // The checkpoint, then an entity and its image per key, each its own group where the limit holds.
    if (ctx.flavour === 'classic') expect(Math.max(...commits)).toBeLessThanOrEqual(25);
    expect(events.some((e) => e.method === 'rollback')).toBe(false);
  });
});
