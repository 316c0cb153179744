import { Entity, Key, PackedKeys, type RpcEvent } from '../../src/datastore';
import { describeEachFlavour } from '../support/emulators';

const BIG = 2n ** 62n + 12345n;

/** Keys of every shape: ids past 2^53, unicode names, ancestors by id and by name, two namespaces. */
function shapes(namespace: string): Key[] {
  const keys: Key[] = [];
  for (let i = 0; i < 350; i++) {
    keys.push(Key.of('Shape', BIG + BigInt(i), { namespace }));
    keys.push(Key.of('Shape', `naïve-é-${i}-🙂`, { namespace }));
    keys.push(Key.of('Org', `o${i % 3}`, 'Team', i + 1, 'Shape', i + 1, { namespace }));
  }
  return keys;
}

describeEachFlavour('keys-only queries decoded from the wire', (ctx) => {
  it('give exactly the keys a full query gives, in the same order, paging by cursor where the backend pages', async () => {
    const events: RpcEvent[] = [];
    const store = await ctx.connect({ onRpc: (e) => events.push(e) });
    for (const namespace of ['', 'tenant']) await store.save(shapes(namespace).map((key, n) => Entity.from(key, { n })));
    for (const namespace of ['', 'tenant']) {
      const full: string[] = [];
      for await (const batch of store.queryBatches({ kind: 'Shape', namespace, orderByKey: true })) full.push(...batch.map((e) => e.key.toString()));
      events.length = 0;
      const keys: Key[] = [];
      for await (const batch of store.keys({ kind: 'Shape', namespace, orderByKey: true })) keys.push(...batch);
      expect(keys.map(String)).toEqual(full);
      expect(full).toHaveLength(1050);
      expect(keys.every((k) => k.namespace === namespace)).toBe(true);
      expect(keys.filter((k) => k.id === (BIG + 7n).toString())).toHaveLength(1);
      // The classic emulator pages at 300: the cursor carries the stream on.
      const queries = events.filter((e) => e.method === 'runQuery').length;
      if (ctx.flavour === 'classic') expect(queries).toBeGreaterThan(1);
      else expect(queries).toBe(1);
    }
  });

  it('stop at a limit, and start after a key', async () => {
    const store = await ctx.connect();
    await store.save(Array.from({ length: 20 }, (_, i) => Entity.from(Key.of('Few', i + 1), { i })));
    const first: Key[] = [];
    for await (const batch of store.keys({ kind: 'Few', limit: 5, orderByKey: true })) first.push(...batch);
    expect(first.map((k) => k.id)).toEqual(['1', '2', '3', '4', '5']);
    const rest: Key[] = [];
    for await (const batch of store.keys({ kind: 'Few', after: Key.of('Few', 17), orderByKey: true })) rest.push(...batch);
    expect(rest.map((k) => k.id)).toEqual(['18', '19', '20']);
  });

  it('keep keys packed as their wire bytes, and give back the same keys by index, slice and concatenation', async () => {
    const store = await ctx.connect();
    const namespace = 'packed';
    await store.save(shapes(namespace).map((key, n) => Entity.from(key, { n })));
    const batches: PackedKeys[] = [];
    for await (const batch of store.packedKeys({ kind: 'Shape', namespace, orderByKey: true })) batches.push(batch);
    const packed = PackedKeys.concat(batches);
    const objects: Key[] = [];
    for await (const batch of store.keys({ kind: 'Shape', namespace, orderByKey: true })) objects.push(...batch);
    expect(packed.length).toBe(1050);
    expect([...packed].map(String)).toEqual(objects.map(String));
    expect(packed.toArray().every((k, i) => k.equals(objects[i]) && k.namespace === namespace)).toBe(true);
    expect(packed.at(1049)!.equals(objects[1049])).toBe(true);
    expect(packed.at(1050)).toBeUndefined();
    expect(packed.at(-1)).toBeUndefined();
    const middle = packed.slice(300, 700);
    expect(middle.length).toBe(400);
    expect([...middle].map(String)).toEqual(objects.slice(300, 700).map(String));
    expect(middle.slice(399).at(0)!.equals(objects[699])).toBe(true);
    expect(packed.slice(10, 10).length).toBe(0);
    expect([...PackedKeys.concat([packed.slice(0, 1), PackedKeys.EMPTY, packed.slice(1)])].map(String)).toEqual(objects.map(String));
  });
});
