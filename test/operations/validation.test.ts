import { Entity, Key } from '../../src/datastore';
import { LocalExecutor } from '../../src/executors';
import { defineModel, field } from '../../src/model';
import { AddFieldData, CopyFieldData, CopyModelData, CopyModelDataToNamespace, DeleteModelData, MapFunctionOnEntities, RemoveFieldData } from '../../src/operations';
import { describeEachFlavour } from '../support/emulators';
import { controlEntities, readKind } from './dataset';

const badInput = (message: RegExp) => expect.objectContaining({ code: 'BAD_INPUT', message: expect.stringMatching(message) });

describe('operations reject bad arguments when made, naming the kind and the field', () => {
  const Typed = defineModel('Typed', { age: field.integer(), label: field.string({ default: 'x' }) });

  it('a default of the wrong type for the model field', () => {
    expect(() => new AddFieldData(Typed, 'age', { default: 'ten' })).toThrow(badInput(/AddFieldData on Typed has a default of the wrong type for "age": it holds a string .*expected integer/));
    expect(() => new AddFieldData(Typed, 'height', { default: 1 })).toThrow(badInput(/sets "height", which is not a field of the model \(fields: age, label\)/));
    expect(new AddFieldData(Typed, 'age', { default: 10 }).kind).toBe('Typed');
  });

  it('an empty namespace list, a shard count below one, a batch too big for a transaction, a bad filter', () => {
    expect(() => new RemoveFieldData('Person', 'x', { namespace: [] })).toThrow(badInput(/RemoveFieldData on Person: the namespace list is empty/));
    expect(() => new DeleteModelData('Person', { shardCount: 0 })).toThrow(badInput(/DeleteModelData on Person: shardCount must be a whole number from 1/));
    expect(() => new DeleteModelData('Person', { shardCount: 2.5 })).toThrow(badInput(/shardCount/));
    expect(() => new DeleteModelData('Person', { batchSize: 500 })).toThrow(badInput(/batchSize must be a whole number from 1 to 499/));
    expect(() => new DeleteModelData('Person', { filter: [{ property: 'x', op: '~' as never, value: 1 }] })).toThrow(badInput(/unknown operator "~"/));
    expect(() => new DeleteModelData('Person', { namespace: ['a', '*'] })).toThrow(badInput(/'\*' stands alone/));
  });

  it('arguments that make no sense', () => {
    expect(() => new AddFieldData('Person', 'colour', {} as never)).toThrow(badInput(/needs a default for "colour"/));
    expect(() => new CopyFieldData('Person', 'a', 'a')).toThrow(badInput(/copies "a" onto itself/));
    expect(() => new CopyModelData('Person', 'Person')).toThrow(badInput(/copies the kind onto itself/));
    expect(() => new CopyModelDataToNamespace('Person', 'b', { namespace: ['a', 'b'] })).toThrow(badInput(/copies namespace 'b' onto itself/));
    expect(() => new MapFunctionOnEntities('Person', 'nope' as never)).toThrow(badInput(/needs a function/));
    expect(() => new DeleteModelData('__kind__')).toThrow(badInput(/Invalid kind/));
  });

  it('reverses where they mean something, and says why not elsewhere', () => {
    const add = new AddFieldData('Person', 'colour', { default: 'blue', namespace: ['', 'b'] });
    const removal = add.reverse();
    expect(removal).toBeInstanceOf(RemoveFieldData);
    expect(removal.describe()).toBe("Remove Person.colour in namespaces '', 'b'");
    expect(removal.reverse().toJSON()).toEqual(add.toJSON());
    expect(() => new RemoveFieldData('Person', 'colour').reverse()).toThrow(badInput(/RemoveFieldData on Person is irreversible: the removed values of "colour" are gone/));
    expect(() => new DeleteModelData('Person').reverse()).toThrow(badInput(/DeleteModelData on Person is irreversible/));
    expect(() => new CopyFieldData('Person', 'a', 'b').reverse()).toThrow(badInput(/irreversible/));
    expect(new DeleteModelData('Person').reversible).toBe(false);
    const map = new MapFunctionOnEntities('Person', (e) => void e.set('x', 1), { reverse: (e) => void e.delete('x') });
    expect(map.reverse().reverse().toJSON()).toEqual(map.toJSON());
    expect(new CopyModelData('Person', 'Archive').reverse().describe()).toBe('Delete the copies of Person entities in kind Archive');
  });

  it('describe themselves in one line and as stable JSON', () => {
    const op = new AddFieldData('Person', 'colour', { default: 'blue', filter: { status: 'active' }, namespace: 'tenant-a' });
    expect(op.describe()).toBe(`Set Person.colour to "blue" where missing in namespace 'tenant-a' where status = "active"`);
    expect(op.toJSON()).toEqual({ type: 'AddFieldData', kind: 'Person', name: 'colour', default: 'blue', filter: { status: 'active' }, namespace: 'tenant-a' });
    const fn = new AddFieldData('Person', 'slug', { default: (e) => String(e.get('name')).toLowerCase() });
    expect(fn.toJSON().default).toMatch(/^function: .*toLowerCase/);
    expect(fn.describe()).toBe('Set Person.slug to a function of the entity where missing');
  });
});

describeEachFlavour('operations check the data before running, and a failing entity stops the run', (ctx) => {
  const seed = async () => {
    const store = await ctx.connect();
    await store.save(Array.from({ length: 60 }, (_, i) => Entity.from(Key.of('Checked', i + 1), { status: i % 2 ? 'active' : 'gone', note: 'x' }, { excludeFromIndexes: ['note'] })));
    return store;
  };

  it('a filter on a property that no entity has indexed is refused, and nothing is written', async () => {
    const store = await seed();
    await expect(new DeleteModelData('Checked', { filter: { stauts: 'active' } }).validate(store)).rejects.toEqual(
      badInput(/DeleteModelData on Checked filters on "stauts", but no Checked entity has that property indexed/),
    );
    await expect(new DeleteModelData('Checked', { filter: { note: 'x' } }).validate(store)).rejects.toEqual(badInput(/"note"/));
    await new DeleteModelData('Checked', { filter: { status: 'active' } }).validate(store);
    // A kind with no entities has nothing to get wrong.
    await new DeleteModelData('Empty', { filter: { anything: 1 } }).validate(store);
    const Model = defineModel('Checked', { status: field.string() });
    await expect(new DeleteModelData(Model, { filter: { stauts: 'active' } }).validate(store)).rejects.toEqual(badInput(/"stauts", which is not a field of the model/));
    expect(await readKind(store, 'Checked')).toHaveLength(60);
    expect(await controlEntities(store)).toBe(0);
  });

  it("namespace '*' lists namespaces where the backend can, and says what to do where it cannot", async () => {
    const store = await seed();
    await store.save([Entity.from(Key.of('Checked', 1, { namespace: 'other' }), { status: 'active' })]);
    const all = new DeleteModelData('Checked', { namespace: '*' });
    if (ctx.flavour === 'classic') expect(await all.namespaces(store)).toEqual(['', 'other']);
    else await expect(all.validate(store)).rejects.toEqual(badInput(/namespace '\*' needs a backend that lists namespaces.*\{namespace: \['', 'tenant-a'/));
  });

  it('a user function that throws fails the run, naming the key and the migration; its batch is not written', async () => {
    const store = await seed();
    const failing = new MapFunctionOnEntities('Checked', (e) => {
      e.set('touched', true);
      if (e.key.id === '7') throw new Error('cannot handle seven.');
    });
    const run = new LocalExecutor().runOperation({ store, job: { namespace: '', id: 'throws#1' }, operation: failing, migration: '0009_touch' });
    await expect(run).rejects.toMatchObject({
      code: 'OPERATION_FAILED',
      message: expect.stringMatching(/^MapFunctionOnEntities on Checked failed at key Checked:7 in migration 0009_touch: cannot handle seven\. Pass \{skipErrors: true\}/),
      context: expect.objectContaining({ key: 'Checked:7', migration: '0009_touch' }),
    });
    // The whole batch holding key 7 (here: every entity) was rolled back.
    expect((await readKind(store, 'Checked')).filter((e) => e.has('touched'))).toHaveLength(0);

    const skipping = new MapFunctionOnEntities(
      'Checked',
      (e) => {
        e.set('touched', true);
        if (e.key.id === '7') throw new Error('cannot handle seven.');
      },
      { skipErrors: true },
    );
    const result = await new LocalExecutor().runOperation({ store, job: { namespace: '', id: 'throws#2' }, operation: skipping, migration: '0009_touch' });
    expect(result).toMatchObject({ scanned: 60, changed: 59, failed: 1 });
    expect(result.warnings).toEqual(['Failed and skipped: 1 entity (e.g. Checked:7 (cannot handle seven.))']);
  });

  it('a function default of the wrong type fails at the entity, naming it', async () => {
    const store = await seed();
    const Model = defineModel('Checked', { status: field.string(), score: field.integer() });
    const op = new AddFieldData(Model, 'score', { default: (e) => (e.key.id === '3' ? 'three' : 3) });
    await expect(new LocalExecutor().runOperation({ store, job: { namespace: '', id: 'typed#1' }, operation: op, migration: '0010_score' })).rejects.toMatchObject({
      code: 'OPERATION_FAILED',
      message: expect.stringMatching(/AddFieldData on Checked failed at key Checked:3 in migration 0010_score: the default for Checked\.score holds a string/),
    });
  });
});
