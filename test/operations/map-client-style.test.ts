import type { google } from '@google-cloud/datastore/build/protos/protos';
import { Double, Entity, Key, type Datastore } from '../../src/datastore';
import { LocalExecutor } from '../../src/executors';
import { MapFunctionOnEntities, type MapFunction } from '../../src/operations';
import { describeEachFlavour, type FlavourContext } from '../support/emulators';
import { rawClient } from '../support/raw-client';
import { LONG_TEXT } from './dataset';

const N = 20;
const BIG = 9007199254740993n; // 2^53 + 1: a number would round it

/** An Order as a service on @google-cloud/datastore types its entities: plain properties. */
interface Order {
  key: Key;
  total: number;
  ratio: number;
  bio: string;
  tags: string[];
  vip?: boolean;
  discount?: number;
}

/** Totals 0, 150, …, 2850: the last 13 are over 1000. A whole double, unindexed text and array, an integer past 2^53, a discount on even ones. */
async function seed(store: Datastore, kind: string): Promise<Key[]> {
  const entities = Array.from({ length: N }, (_, i) =>
    Entity.from(
      i % 2 ? Key.of(kind, i + 1) : Key.of(kind, `o${i}`),
      { total: i * 150, ratio: new Double(2), bio: LONG_TEXT, tags: ['new'], big: BIG, ...(i % 2 ? {} : { discount: 5 }) },
      { excludeFromIndexes: ['bio', 'tags'] },
    ),
  );
  await store.save(entities);
  return entities.map((e) => e.key);
}

async function rawProperties(ctx: FlavourContext, keys: readonly Key[]): Promise<Map<string, Record<string, google.datastore.v1.IValue>>> {
  const client = rawClient(ctx.host, ctx.projectId);
  try {
    const [response]: [google.datastore.v1.ILookupResponse] = await client.lookup({ projectId: ctx.projectId, keys: keys.map((k) => k.toProto(ctx.projectId)) });
    return new Map(response.found!.map((r) => [Key.fromProto(r.entity!.key!).toString(), r.entity!.properties!]));
  } finally {
    await client.close();
  }
}

/** Written as with @google-cloud/datastore: reads and writes plain properties, changes an array in place, returns the entity. */
const markBigOrders = ((order: Order) => {
  if (order.total > 1000) {
    order.total = order.total + 1;
    order.ratio = order.ratio * 2;
    order.bio = order.bio.toUpperCase();
    order.tags.push('big');
    order.vip = true;
  }
  return order;
}) as unknown as MapFunction;

describeEachFlavour('MapFunctionOnEntities reading and writing properties as with @google-cloud/datastore', (ctx) => {
  let store: Datastore;
  beforeAll(async () => {
    store = await ctx.connect();
  });

  let runs = 0;
  async function run(kind: string, fn: MapFunction, options: { dryRun?: boolean } = {}) {
    return new LocalExecutor().runOperation({ store, job: { namespace: '', id: `${kind}#${++runs}` }, operation: new MapFunctionOnEntities(kind, fn), migration: '0003_vip', ...options });
  }

  it("`order.total > 1000` reads the property and `order.total = n` sets it, keeping each value's type and index exclusion", async () => {
    const keys = await seed(store, 'Order');
    const before = await rawProperties(ctx, keys);
    const result = await run('Order', markBigOrders);
    expect(result).toMatchObject({ scanned: N, changed: 13, skipped: 7, failed: 0, warnings: [] });

    const after = await rawProperties(ctx, keys);
    keys.forEach((key, i) => {
      const stored = after.get(key.toString())!;
      if (i * 150 <= 1000) {
        expect(stored).toEqual(before.get(key.toString()));
        return;
      }
      expect(stored.total).toMatchObject({ integerValue: String(i * 150 + 1) });
      // 2 × 2 is whole: a plain number would have been written as an integer, set keeps the double.
      expect(stored.ratio).toMatchObject({ doubleValue: 4, valueType: 'doubleValue' });
      expect(stored.bio).toMatchObject({ stringValue: LONG_TEXT.toUpperCase(), excludeFromIndexes: true });
      expect(stored.tags.arrayValue!.values!.map((v) => [v.stringValue, v.excludeFromIndexes])).toEqual([
        ['new', true],
        ['big', true],
      ]);
      expect(stored.vip).toMatchObject({ booleanValue: true, excludeFromIndexes: false });
      expect(stored.big).toEqual(before.get(key.toString())!.big);
    });
  });

  it('reports a name read that the entity lacks, with the count and example keys: a typo is a warning, not a silent "0 changed"', async () => {
    const keys = await seed(store, 'Typo');
    const typo = ((order: Order & { totl?: number }) => {
      if (order.totl! > 1000) order.vip = true;
    }) as unknown as MapFunction;
    const dry = await run('Typo', typo, { dryRun: true });
    expect(dry).toMatchObject({ scanned: N, changed: 0 });
    expect(dry.warnings).toEqual([
      expect.stringMatching(/^entity\.totl read as undefined: no such property on the entity \(misspelt\? read an optional one with entity\.get\('totl'\)\): 20 entities \(e\.g\. Typo:\S+, /),
    ]);
    expect((await run('Typo', typo)).warnings).toEqual(dry.warnings);

    // An optional property is counted only where missing: here, on the odd half.
    const optional = ((order: Order) => {
      if ((order.discount ?? 0) > 0 && order.total > 1000) order.vip = true;
    }) as unknown as MapFunction;
    const result = await run('Typo', optional);
    expect(result).toMatchObject({ scanned: N, changed: 6 });
    expect(result.warnings).toEqual([expect.stringMatching(/^entity\.discount read as undefined: .*: 10 entities \(e\.g\. Typo:\d+, /)]);
    expect((await store.lookup(keys)).filter((e) => e!.get('vip') === true)).toHaveLength(6);
  });

  it("keeps Entity's members: `key` and `get` are the entity's own, a property of such a name is read with get(), and assigning one fails saying so", async () => {
    await store.save([Entity.from(Key.of('Clash', 1), { key: 'stored key', names: 'stored names', label: 'x' })]);
    const seen: unknown[] = [];
    const reads = ((entity: Entity & { label: string; echo: string }) => {
      seen.push(entity.key, entity.get('key'), entity.get('names'), 'names' in entity, 'label' in entity, 'missing' in entity);
      entity.echo = `${entity.label}!`;
    }) as unknown as MapFunction;
    expect(await run('Clash', reads)).toMatchObject({ changed: 1, warnings: [] });
    expect(seen).toEqual([Key.of('Clash', 1), 'stored key', 'stored names', true, true, false]);
    expect((await store.get(Key.of('Clash', 1)))!.toObject()).toEqual({ key: 'stored key', names: 'stored names', label: 'x', echo: 'x!' });

    const assignsMember = ((entity: Record<string, unknown>) => {
      entity.names = 'new';
    }) as unknown as MapFunction;
    await expect(run('Clash', assignsMember)).rejects.toMatchObject({
      message: expect.stringContaining("the function assigned entity.names, which is a member of Entity, not a property: use entity.set('names', value)"),
    });
    const assignsUndefined = ((entity: Record<string, unknown>) => {
      entity.label = undefined;
    }) as unknown as MapFunction;
    await expect(run('Clash', assignsUndefined)).rejects.toMatchObject({
      message: expect.stringContaining('the function assigned undefined to entity.label: assign null to store a null, or delete entity.label'),
    });
  });
});
