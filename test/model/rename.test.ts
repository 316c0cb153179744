import { Entity, Key } from '../../src/datastore';
import { defineModel, field } from '../../src/model';
import { describeEachFlavour } from '../support/emulators';

describe('renamedFrom: bad definitions', () => {
  it('refuses a rename from a field the model still has, naming the kind and both fields', () => {
    expect(() => defineModel('Member', { nickname: field.string(), displayName: field.string({ renamedFrom: 'nickname' }) })).toThrow(
      'Model Member: field "displayName" is renamed from "nickname", which is still a field of the model; remove the old field.',
    );
    expect(() => defineModel('Member', { nickname: field.string(), displayName: field.string({ renamedFrom: 'nickname' }) })).toThrow(
      expect.objectContaining({ code: 'MODEL_DEFINITION', context: { kind: 'Member', field: 'displayName' } }),
    );
  });

  it('refuses a rename from itself, from a reserved or empty name, twice from one name, and on array elements', () => {
    expect(() => defineModel('Member', { a: field.string({ renamedFrom: 'a' }) })).toThrow('Model Member: field "a" is renamed from itself.');
    expect(() => defineModel('Member', { a: field.string({ renamedFrom: '' }) })).toThrow(/field "a" has an invalid renamedFrom/);
    expect(() => defineModel('Member', { a: field.string({ renamedFrom: '__key__' }) })).toThrow(/field "a" has an invalid renamedFrom/);
    expect(() => defineModel('Member', { a: field.string({ renamedFrom: { name: 'b', complete: 'yes' as never } }) })).toThrow(/field "a" has an invalid renamedFrom/);
    expect(() => defineModel('Member', { a: field.string({ renamedFrom: 'old' }), b: field.string({ renamedFrom: { name: 'old' } }) })).toThrow(
      'Model Member: fields "a" and "b" are both renamed from "old".',
    );
    expect(() => defineModel('Member', { a: field.array(field.string({ renamedFrom: 'old' })) })).toThrow(/field "a" sets unique or renamedFrom on its element type/);
  });
});

describeEachFlavour('renamedFrom', (ctx) => {
  const Before = defineModel('Member', { nickname: field.string(), age: field.integer() });
  const During = defineModel('Member', { displayName: field.string({ renamedFrom: 'nickname', indexed: false }), age: field.integer() });
  const Done = defineModel('Member', { displayName: field.string({ renamedFrom: { name: 'nickname', complete: true } }), age: field.integer() });

  it('loads fall back to the old property, and saves keep both names in step', async () => {
    const store = await ctx.connect();
    await Before.save(store, Before.create('m1', { nickname: 'Ann', age: 30 }));

    const m1 = (await During.get(store, 'm1'))!;
    expect(m1.values).toEqual({ displayName: 'Ann', age: 30 });
    expect((await During.query(store)).map((m) => m.values.displayName)).toEqual(['Ann']);

    await During.save(store, m1);
    let raw = (await store.get(Key.of('Member', 'm1')))!;
    expect(raw.toObject()).toEqual({ displayName: 'Ann', nickname: 'Ann', age: 30 });
    expect([raw.isIndexed('displayName'), raw.isIndexed('nickname')]).toEqual([false, false]);

    m1.values.displayName = 'Annie';
    await During.save(store, m1);
    raw = (await store.get(Key.of('Member', 'm1')))!;
    expect([raw.get('displayName'), raw.get('nickname')]).toEqual(['Annie', 'Annie']);
    // Code not yet deployed still reads the old name and sees the latest value.
    expect((await Before.get(store, 'm1'))!.values.nickname).toBe('Annie');

    await During.save(store, During.create('m2', { displayName: 'Bo', age: 4 }));
    expect((await store.get(Key.of('Member', 'm2')))!.toObject()).toEqual({ displayName: 'Bo', nickname: 'Bo', age: 4 });
  });

  it('prefers the new property when both exist', async () => {
    const store = await ctx.connect();
    await store.save([Entity.from(Key.of('Member', 'both'), { displayName: 'new', nickname: 'old', age: 1n })]);
    expect((await During.get(store, 'both'))!.values.displayName).toBe('new');
  });

  it('once complete, saves write only the new name and still load entities not yet copied', async () => {
    const store = await ctx.connect();
    await store.save([Entity.from(Key.of('Member', 'c1'), { displayName: 'Cy', nickname: 'Cy', age: 2n }), Entity.from(Key.of('Member', 'c2'), { nickname: 'Di', age: 3n })]);
    const c1 = (await Done.get(store, 'c1'))!;
    c1.values.displayName = 'Cyril';
    await Done.save(store, c1);
    const raw = (await store.get(Key.of('Member', 'c1')))!;
    expect(raw.toObject()).toEqual({ displayName: 'Cyril', nickname: 'Cy', age: 2 });
    expect(raw.isIndexed('displayName')).toBe(true);

    expect((await Done.get(store, 'c2'))!.values.displayName).toBe('Di');
    await Done.save(store, Done.create('c3', { displayName: 'Ed', age: 5 }));
    expect((await store.get(Key.of('Member', 'c3')))!.toObject()).toEqual({ displayName: 'Ed', age: 5 });
  });
});
