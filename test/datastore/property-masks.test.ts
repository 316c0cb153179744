import { Entity, honoursPropertyMasks, Key, type RpcEvent } from '../../src/datastore';
import { PROBE_KIND } from '../../src/datastore/property-masks';
import { LocalExecutor } from '../../src/executors';
import { AddFieldData, CopyFieldData, RemoveFieldData } from '../../src/operations';
import { describeEachFlavour } from '../support/emulators';

const LONG = 'x'.repeat(5000);
const BIG = 2n ** 60n + 7n;

describeEachFlavour('property masks', (ctx) => {
  const honours = ctx.flavour === 'firestore';

  it(`are ${honours ? 'honoured' : 'ignored'} by this backend, learned by a probe that leaves nothing behind`, async () => {
    const store = await ctx.connect();
    expect(await honoursPropertyMasks(store)).toBe(honours);
    const left: Key[] = [];
    for await (const keys of store.keys({ kind: PROBE_KIND })) left.push(...keys);
    expect(left).toEqual([]);
  });

  it('a lookup of some properties, written back, leaves every other property exactly as stored', async () => {
    const store = await ctx.connect();
    const key = Key.of('Masked', 'one');
    await store.save([Entity.from(key, { kept: LONG, big: BIG, 'dotted.name': 'd', colour: 'red' }, { excludeFromIndexes: ['kept'] })]);
    const [partial] = await store.lookup([key], undefined, ['colour', 'dotted.name']);
    if (honours) {
      expect(partial!.partialOf).toEqual(['colour', 'dotted.name']);
      expect(partial!.names().sort()).toEqual(['colour', 'dotted.name']);
    } else {
      // A backend that ignores the mask sends the entity whole, and it is then written whole.
      expect(partial!.partialOf).toBeUndefined();
    }
    partial!.set('colour', 'blue');
    partial!.delete('dotted.name');
    await store.save([partial!]);
    const [back] = await store.lookup([key]);
    expect(back!.toObject()).toEqual({ kept: LONG, big: BIG, colour: 'blue' });
    expect(back!.isIndexed('kept')).toBe(false);
  });

  it('a partial entity refuses properties outside its mask, and cannot be copied or inserted', async () => {
    const store = await ctx.connect();
    const partial = new Entity(Key.of('Masked', 'two'), {}, ['colour']).set('size', 3);
    await expect(store.save([partial])).rejects.toThrow(/only colour; it cannot be written with size set/);
    expect(() => partial.copy()).toThrow(/only some properties/);
    await expect(store.commit([{ insert: new Entity(Key.of('Masked', 'three'), {}, ['colour']) }])).rejects.toThrow(/cannot be inserted/);
    expect((await store.lookup([Key.of('Masked', 'two'), Key.of('Masked', 'three')])).every((e) => e === undefined)).toBe(true);
  });

  it(`field operations ${honours ? 'send only the fields they touch' : 'send whole entities here'} and keep the rest`, async () => {
    const events: RpcEvent[] = [];
    const store = await ctx.connect({ onRpc: (e) => events.push(e) });
    const keys = Array.from({ length: 300 }, (_, i) => Key.of('Wide', i + 1));
    await store.save(keys.map((key, i) => Entity.from(key, { n: i, nick: `n${i}`, kept: LONG }, { excludeFromIndexes: ['kept'] })));
    const executor = new LocalExecutor();
    const operations = [new AddFieldData('Wide', 'colour', { default: 'blue' }), new CopyFieldData('Wide', 'nick', 'alias'), new RemoveFieldData('Wide', 'nick')];
    for (const [i, operation] of operations.entries()) {
      events.length = 0;
      expect(await executor.runOperation({ store, job: { namespace: '', id: `masks:${i}` }, operation })).toMatchObject({ changed: 300, failed: 0 });
      const written = events.filter((e) => e.method === 'commit' && e.transactional).reduce((n, e) => n + (e.bytes ?? 0), 0);
      // 300 entities carry 1.5 MB of `kept`: only whole-entity writes send it.
      if (honours) expect(written).toBeLessThan(300 * 1000);
      else expect(written).toBeGreaterThan(300 * LONG.length);
    }
    const after = await store.lookup(keys);
    after.forEach((entity, i) => expect(entity!.toObject()).toEqual({ n: i, kept: LONG, colour: 'blue', alias: `n${i}` }));
  });
});
