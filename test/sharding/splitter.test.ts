import type { Datastore, Key, RpcEvent } from '../../src/datastore';
import { cutFromStream, inRange, splitNamespace, type KeyRange } from '../../src/sharding';
import { seedMixed } from '../operations/dataset';
import { describeEachFlavour } from '../support/emulators';

const N = 1200;

/** How many of the keys fall in each range; fails if a key is in none or in two. */
function sizes(ranges: readonly KeyRange[], keys: readonly Key[]): number[] {
  const counts = ranges.map(() => 0);
  for (const key of keys) {
    const hits = ranges.map((r, i) => (inRange(r, key) ? i : -1)).filter((i) => i >= 0);
    expect(hits).toHaveLength(1);
    counts[hits[0]]++;
  }
  return counts;
}

describeEachFlavour('the splitter on mixed keys (ids, names, ancestors)', (ctx) => {
  let store: Datastore;
  let keys: Key[];
  const events: RpcEvent[] = [];
  const target = { kind: 'Split', namespace: 'tenant-b', filters: [] };

  beforeAll(async () => {
    store = await ctx.connect({ onRpc: (e) => events.push(e) });
    keys = await seedMixed(store, 'Split', { 'tenant-b': N });
  });

  it('gives the shard count asked for, covering every key once, balanced', async () => {
    const ranges = (await splitNamespace(store, target, 4))!;
    expect(ranges).toHaveLength(4);
    expect(ranges[0].start).toBeUndefined();
    expect(ranges[3].end).toBeUndefined();
    for (const size of sizes(ranges, keys)) expect(Math.abs(size - N / 4)).toBeLessThan(N / 8);
  });

  it('sizes the default shard count from the scatter sample, or leaves the namespace to be cut from its stream', async () => {
    const ranges = await splitNamespace(store, target);
    if (ctx.flavour === 'classic') {
      expect(ranges!.length).toBeGreaterThan(1);
      expect(sizes(ranges!, keys).reduce((a, b) => a + b, 0)).toBe(N);
    } else {
      expect(ranges).toBeUndefined(); // no __scatter__ rows on the Firestore-mode emulator
    }
    expect(await splitNamespace(store, target, 1)).toEqual([{ namespace: 'tenant-b' }]);
  });

  it('cuts balanced, contiguous shards from the key stream, one query per page', async () => {
    events.length = 0;
    const pages = [];
    for await (const page of cutFromStream(store, target, undefined, { pageKeys: 500 })) pages.push(page);
    expect(pages).toHaveLength(3); // 500 + 500 + 200
    const shards = pages.flatMap((p) => p.shards);
    expect(shards.flatMap((s) => [...s.keys])).toHaveLength(N);
    expect(
      sizes(
        shards.map((s) => s.range),
        keys,
      ),
    ).toEqual(shards.map((s) => s.keys.length));
    for (let i = 1; i < shards.length; i++) expect(shards[i].range.start!.equals(shards[i - 1].range.end!)).toBe(true);
    // The classic emulator pages by itself (300 a page); Firestore mode answers a page in one response.
    if (ctx.flavour === 'firestore') expect(events.filter((e) => e.method === 'runQuery')).toHaveLength(3);
  });

  it('cuts only the entities an equality filter keeps', async () => {
    const pages = [];
    for await (const page of cutFromStream(store, { ...target, filters: [{ property: 'colour', op: '=', value: 'red' }] })) pages.push(page);
    expect(pages.flatMap((p) => p.shards).flatMap((s) => [...s.keys])).toHaveLength(N / 10);
  });
});
