import type { google } from '@google-cloud/datastore/build/protos/protos';
import { Datastore as OfficialDatastore, type Key as OfficialKey } from '@google-cloud/datastore';
import { Double, Entity, GeoPoint, Key, fromOfficialEntity, fromOfficialKey, toOfficialEntity, toOfficialKey, type Datastore } from '../../src/datastore';
import { defineModel, field } from '../../src/model';
import { describeEachFlavour, type FlavourContext } from '../support/emulators';
import { rawClient } from '../support/raw-client';

const BIG = '9007199254740993'; // 2^53 + 1: a number would round it

/** Properties exactly as Datastore stored them, past both clients' codecs. */
async function rawProperties(ctx: FlavourContext, key: Key): Promise<Record<string, google.datastore.v1.IValue>> {
  const client = rawClient(ctx.host, ctx.projectId);
  try {
    const [response]: [google.datastore.v1.ILookupResponse] = await client.lookup({ projectId: ctx.projectId, keys: [key.toProto(ctx.projectId)] });
    return response.found![0].entity!.properties!;
  } finally {
    await client.close();
  }
}

describeEachFlavour('conversions with @google-cloud/datastore', (ctx) => {
  let store: Datastore;
  let official: OfficialDatastore;
  beforeAll(async () => {
    store = await ctx.connect();
    // A universe domain of its own, or the client asks the metadata server of a GCE machine for one, and warns.
    official = new OfficialDatastore({ projectId: ctx.projectId, apiEndpoint: ctx.host, universeDomain: 'googleapis.com' });
  });
  afterAll(async () => {
    await Promise.all([...official.clients_.values()].map((client) => client.close()));
  });

  it('round-trips keys both ways: ids past 2^53, digit-string names, ancestors, namespaces and incomplete keys', () => {
    const keys = [Key.of('Order', BigInt(BIG)), Key.of('Order', '123'), Key.of('Company', 'acme', 'Dept', 7, 'Order', BigInt(BIG), { namespace: 'tenant-a' }), Key.of('Company', BigInt(BIG), 'Order')];
    for (const key of keys) {
      const converted = toOfficialKey(key, official);
      expect(official.isKey(converted)).toBe(true);
      expect(fromOfficialKey(converted)).toEqual(key);
    }
    const made = toOfficialKey(keys[2], official);
    expect(made).toMatchObject({ namespace: 'tenant-a', kind: 'Order', id: BIG, parent: { kind: 'Dept', id: '7', parent: { kind: 'Company', name: 'acme' } } });
    expect(toOfficialKey(keys[1], official)).toMatchObject({ name: '123', id: undefined });

    // Keys as the official client's users make them, and as JSON.
    const theirs = official.key({ namespace: 'tenant-a', path: ['Company', 'acme', 'Order', official.int(BIG)] });
    expect(fromOfficialKey(theirs)).toEqual(Key.of('Company', 'acme', 'Order', BigInt(BIG), { namespace: 'tenant-a' }));
    expect(fromOfficialKey(official.key(['Order', 100]))).toEqual(Key.of('Order', 100));
    expect(fromOfficialKey(JSON.parse(JSON.stringify(theirs)) as OfficialKey)).toEqual(fromOfficialKey(theirs));
  });

  it('refuses an id a number has already rounded, and what is no key, naming fromOfficialKey', () => {
    expect(() => fromOfficialKey(official.key(['Order', 2 ** 53 + 2]))).toThrow(/^fromOfficialKey: Order:9007199254740994 cannot be converted: id 9007199254740994 is a number beyond 2\^53/);
    expect(() => fromOfficialKey({ id: 100 } as never)).toThrow(/^fromOfficialKey: an object with id is not a @google-cloud\/datastore key/);
    expect(() => Entity.from(official.key(['Order', 1]) as never, {})).toThrow(/convert a @google-cloud\/datastore key with fromOfficialKey\(key\)/);
  });

  it("Model.get and getMany find entities by the official client's keys; the official client finds ours by toOfficialKey", async () => {
    const Order = defineModel('OfficialOrder', { total: field.integer() });
    const key = Key.of('Customer', 'c1', 'OfficialOrder', BigInt(BIG), { namespace: 'shop' });
    await store.save([Entity.from(key, { total: 2000 })]);

    const theirs = official.key({ namespace: 'shop', path: ['Customer', 'c1', 'OfficialOrder', official.int(BIG)] });
    const found = await Order.get(store, theirs);
    expect(found?.key).toEqual(key);
    expect(found?.values.total).toBe(2000);
    expect((await Order.getMany(store, [theirs, official.key({ namespace: 'shop', path: ['Customer', 'c1', 'OfficialOrder', 5] })])).map((o) => o?.values.total)).toEqual([2000, undefined]);
    await expect(Order.get(store, official.key(['Customer', 'c1']))).rejects.toThrow('Key Customer:"c1" is not of kind OfficialOrder.');
    // The store itself takes them too.
    expect((await store.get(theirs))?.get('total')).toBe(2000);
    expect((await store.lookup([theirs, key])).map((e) => e?.get('total'))).toEqual([2000, 2000]);

    const [read] = (await official.get(toOfficialKey(key, official))) as [Record<string | symbol, unknown>];
    expect(read.total).toBe(2000);
    expect(fromOfficialKey(read[official.KEY] as OfficialKey)).toEqual(key);
  });

  it('toOfficialEntity has the official client store what our store stores: integers past 2^53, whole doubles, keys, nested index exclusion', async () => {
    const entity = Entity.from(
      Key.of('Mixed', 'ours', { namespace: 'shop' }),
      {
        count: 5,
        big: BigInt(BIG),
        ratio: new Double(2),
        half: 0.5,
        text: 'é'.repeat(1000),
        tags: ['a', 'b'],
        ref: Key.of('Customer', BigInt(BIG), { namespace: 'shop' }),
        at: new Date(Date.UTC(2024, 1, 29, 12, 30, 15, 250)),
        blob: Buffer.from([0, 1, 254, 255]),
        place: new GeoPoint(48.85, 2.35),
        none: null,
        yes: true,
      },
      { excludeFromIndexes: ['text', 'tags'] },
    );
    entity.setRaw('nested', { entityValue: { properties: { hidden: { stringValue: 'h', excludeFromIndexes: true }, shown: { integerValue: '1' } } } });
    await store.save([entity]);

    const theirs = entity.copy(Key.of('Mixed', 'theirs', { namespace: 'shop' }));
    const shaped = toOfficialEntity(theirs, official);
    expect(shaped.excludeFromIndexes.sort()).toEqual(['nested.hidden', 'tags[]', 'text']);
    await official.save(shaped);

    expect(await rawProperties(ctx, theirs.key)).toEqual(await rawProperties(ctx, entity.key));
  });

  it('fromOfficialEntity stores what the official client would: its Int, Double, GeoPoint and keys, and excludeFromIndexes as it applies them', async () => {
    const saved = {
      key: official.key({ namespace: 'shop', path: ['Mixed', 'official'] }),
      data: {
        big: official.int(BIG),
        ratio: official.double(2),
        place: official.geoPoint({ latitude: 48.85, longitude: 2.35 }),
        ref: official.key({ namespace: 'shop', path: ['Customer', official.int(BIG)] }),
        text: 'é'.repeat(1000),
        tags: ['a', 'b'],
        items: [{ sku: 'x', note: 'n' }],
        nested: { hidden: 'h', shown: 1 },
      },
      excludeFromIndexes: ['text', 'tags[]', 'items[].note', 'nested.hidden'],
    };
    const ours = fromOfficialEntity(saved);
    expect(ours.key).toEqual(Key.of('Mixed', 'official', { namespace: 'shop' }));
    expect(ours.changed).toBe(true);
    await official.save(saved);
    const copy = ours.copy(Key.of('Mixed', 'converted', { namespace: 'shop' }));
    await store.save([copy]);
    expect(await rawProperties(ctx, copy.key)).toEqual(await rawProperties(ctx, ours.key));

    // As it reads them (its key under datastore.KEY; integers as Int with wrapNumbers).
    const [read] = (await official.get(saved.key, { wrapNumbers: true })) as [Record<string | symbol, unknown>];
    const back = fromOfficialEntity(read);
    expect(back.key).toEqual(ours.key);
    expect(back.get('big')).toBe(BigInt(BIG));
    expect(back.get('ref')).toEqual(Key.of('Customer', BigInt(BIG), { namespace: 'shop' }));
  });

  it('toOfficialEntity refuses index exclusion its paths cannot say, rather than lose it', () => {
    const dotted = Entity.from(Key.of('Mixed', 1), { 'a.b': 'x' }, { excludeFromIndexes: ['a.b'] });
    expect(() => toOfficialEntity(dotted, official)).toThrow(/^toOfficialEntity: the index exclusion of Mixed:1's property "a\.b" cannot be written/);
  });
});
