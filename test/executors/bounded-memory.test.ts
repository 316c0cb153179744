import { Entity, Key } from '../../src/datastore';
import { LocalExecutor } from '../../src/executors';
import { AddFieldData } from '../../src/operations';
import { describeEachFlavour } from '../support/emulators';

const N = 3_000;
const PAGE = 400;

describeEachFlavour('the keys a LocalExecutor holds', (ctx) => {
  it('stay within 1.5 pages while it cuts a kind of many pages from its key stream, and every entity is done once', async () => {
    const store = await ctx.connect();
    await store.save(Array.from({ length: N }, (_, i) => Entity.from(Key.of('Held', i + 1), { n: i })));
    const held: number[] = [];
    const result = await new LocalExecutor({ pageKeys: PAGE, concurrency: 2 }).runOperation({
      store,
      job: { namespace: '', id: 'held#0.0' },
      operation: new AddFieldData('Held', 'colour', { default: 'blue', batchSize: 50 }),
      onProgress: (p) => held.push(p.keysHeld ?? 0),
    });
    expect(result.changed).toBe(N);
    const colours = new Map<string, unknown>();
    for await (const entity of store.query({ kind: 'Held' })) colours.set(entity.key.toString(), entity.get('colour'));
    expect(colours.size).toBe(N);
    expect([...colours.values()].every((c) => c === 'blue')).toBe(true);
    expect(Math.max(...held)).toBeLessThanOrEqual(1.5 * PAGE);
    if (ctx.flavour === 'firestore') {
      // No __scatter__ here: the kind (7.5 pages) was cut from its stream, and its keys were held page by page.
      expect(Math.max(...held)).toBeGreaterThan(0);
      expect(result.shardsTotal).toBeGreaterThanOrEqual(Math.ceil(N / PAGE));
    } else {
      // The classic emulator's scatter sample splits the kind: shards stream their own ranges, no keys are held ahead.
      expect(Math.max(...held)).toBe(0);
    }
  });

  it('refuses a page size that is not a whole number of keys', () => {
    expect(() => new LocalExecutor({ pageKeys: 0 })).toThrow(/pageKeys must be a whole number ≥ 1, not 0/);
  });
});
