import { Entity, Key, type RpcEvent } from '../../src/datastore';
import { defineModel, field, modelFor } from '../../src/model';
import { describeEachFlavour } from '../support/emulators';

describe('defineModel: bad definitions', () => {
  it('rejects an invalid field type, naming the kind, field and valid types', () => {
    expect(() => defineModel('Person', { age: { type: 'int' } as never })).toThrow(/Model Person: field "age" has invalid type "int"; valid types are string, integer/);
  });

  it('rejects a default of the wrong type', () => {
    expect(() => defineModel('Person', { age: field.integer({ default: 'ten' as never }) })).toThrow(/Model Person: field "age" has a default that is a string \("ten"\), expected integer/);
    expect(() => defineModel('Person', { tags: field.array(field.string(), { default: [1] as never }) })).toThrow(/field "tags" has a default that \[0\]/);
  });

  it('rejects reserved names, bad kinds, arrays of arrays and indexed json', () => {
    expect(() => defineModel('Person', { __key__: field.string() })).toThrow(/reserved/);
    expect(() => defineModel('', {})).toThrow(/Invalid kind ""/);
    expect(() => defineModel('__kind__', {})).toThrow(/reserved/);
    expect(() => defineModel('P', { m: field.array(field.array(field.string())) })).toThrow(/array of arrays/);
    expect(() => defineModel('P', { j: field.json({ indexed: true }) })).toThrow(/cannot be indexed/);
  });

  it('reports an unknown kind with the kinds it knows', () => {
    defineModel('KnownKind', {});
    expect(() => modelFor('Unknwn')).toThrow(/No model is defined for kind "Unknwn". Known kinds: .*KnownKind/);
  });
});

describeEachFlavour('models on the emulator', (ctx) => {
  const Old = defineModel('Person', { name: field.string() });
  const New = defineModel('Person', {
    name: field.string(),
    colour: field.string({ default: 'blue' }),
    tags: field.array(field.string(), { default: () => ['new'] }),
    notes: field.string({ nullable: true, indexed: false }),
    score: field.double({ default: 0 }),
  });

  it('reads old entities with defaults applied in memory, writes nothing, and a save writes them', async () => {
    const events: RpcEvent[] = [];
    const store = await ctx.connect({ onRpc: (e) => events.push(e) });
    await Old.save(
      store,
      [1, 2, 3].map((id) => Old.create(id, { name: `p${id}` })),
    );
    events.length = 0;

    const [p1] = await New.getMany(store, [1]);
    expect(p1!.values).toEqual({ name: 'p1', colour: 'blue', tags: ['new'], notes: null, score: 0 });
    const streamed = await New.query(store);
    expect(streamed.map((p) => p.values.colour)).toEqual(['blue', 'blue', 'blue']);
    expect(events.filter((e) => e.method === 'commit')).toHaveLength(0);
    expect((await store.get(Key.of('Person', 1)))!.has('colour')).toBe(false);

    p1!.values.notes = 'long '.repeat(400);
    await New.save(store, p1!);
    const raw = (await store.get(Key.of('Person', 1)))!;
    expect(raw.get('colour')).toBe('blue');
    expect(raw.typeOf('score')).toBe('double');
    expect(raw.isIndexed('notes')).toBe(false);
    expect(raw.isIndexed('colour')).toBe(true);
  });

  it('keeps properties the model does not know, and re-applies index exclusion on save', async () => {
    const store = await ctx.connect();
    const key = Key.of('Person', 10);
    await store.save([Entity.from(key, { name: 'x', legacy: 'kept', notes: 'indexed by mistake' })]);
    const p = (await New.get(store, 10))!;
    p.values.name = 'y';
    await New.save(store, p);
    const raw = (await store.get(key))!;
    expect(raw.get('legacy')).toBe('kept');
    expect(raw.get('name')).toBe('y');
    expect(raw.isIndexed('notes')).toBe(false);
  });

  it('names the kind, key and field when a stored value has the wrong type', async () => {
    const store = await ctx.connect();
    await store.save([Entity.from(Key.of('Person', 'bad', { namespace: 'ns1' }), { name: 12 })]);
    await expect(New.get(store, 'bad', { namespace: 'ns1' })).rejects.toThrow('Person [ns1]Person:"bad": field "name" holds an integer (12), expected string.');
    await expect(New.query(store, { namespace: 'ns1' })).rejects.toMatchObject({ code: 'TYPE_MISMATCH', context: { kind: 'Person', field: 'name' } });
  });

  it('filters only on known, indexed fields', async () => {
    const store = await ctx.connect();
    await New.save(store, [New.create('a', { name: 'a', colour: 'red' }), New.create('b', { name: 'b' })]);
    const red = await New.query(store, { where: { colour: 'red' } });
    expect(red.map((p) => p.key.name)).toEqual(['a']);
    await expect(New.query(store, { where: { nope: 1 } as never })).rejects.toThrow('Model Person has no field "nope" to filter on.');
    await expect(New.query(store, { where: { notes: 'x' } })).rejects.toThrow(/"notes" is not indexed/);
  });
});

describe('unreachable emulator', () => {
  it('fails fast with a message naming the host and what to do', async () => {
    const { Datastore } = await import('../../src/datastore');
    await expect(Datastore.connect({ emulatorHost: '127.0.0.1:1', projectId: 'p' })).rejects.toThrow(/No Datastore emulator answers at 127.0.0.1:1 .*dsmigrate emulator/);
  });
});
