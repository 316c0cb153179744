import { Double, Entity, Key, type Datastore } from '../../src/datastore';
import { ModelFactory, type FieldInput } from '../../src/dynamic';
import { isDsMigrateError } from '../../src/errors';
import { Recorder } from '../../src/migrations';
import { describeEachFlavour } from '../support/emulators';

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

const DAY = 24 * 60 * 60 * 1000;

describeEachFlavour('Schema migrations of runtime models', (ctx) => {
  let seq = 0;
  const names = () => {
    const n = ++seq;
    return { namespace: `schema-${n}`, control: `schema-ctl-${n}` };
  };

  async function setup(fields: FieldInput[], kind = 'Answer') {
    const store = await ctx.connect();
    const { namespace, control } = names();
    const factory = new ModelFactory(store, { namespace, controlNamespace: control, stalenessMs: 0, schemaBatchSize: 5 });
    await factory.define({ name: 'Survey', kind, fields });
    return { store, factory, namespace, control };
  }

  async function raw(store: Datastore, namespace: string, id: number, kind = 'Answer'): Promise<Entity | undefined> {
    return store.get(Key.of(kind, id, { namespace }));
  }

  async function put(store: Datastore, namespace: string, id: number, values: Record<string, unknown>, kind = 'Answer'): Promise<void> {
    await store.save([Entity.from(Key.of(kind, id, { namespace }), values as Record<string, never>)]);
  }

  it('rename: reads fall back to the old property while the plan waits, the copy runs through the runner, the old name is orphaned', async () => {
    const { store, factory, namespace, control } = await setup([{ name: 'title', type: 'string', default: 'Untitled' }]);
    for (let i = 1; i <= 12; i++) await put(store, namespace, i, { title: `t${i}` });
    await factory.update('Survey', (d) => ({ fields: d.fields.map((f) => ({ ...f, name: 'heading' })) }));

    // During: nothing copied yet, every read through the new model sees the old values.
    const during = await factory.get('Survey');
    expect((await during.get(store, 3))!.values).toEqual({ heading: 't3' });
    expect((await raw(store, namespace, 3))!.has('heading')).toBe(false);
    // A save through the new model writes the new name (and the old, so the copy cannot overwrite it with an older value).
    const seven = (await during.get(store, 7))!;
    seven.values.heading = 'edited';
    await during.save(store, seven);

    const ran = await factory.applyPendingSchema('Survey');
    expect(ran.map((p) => p.steps.map((s) => s.type))).toEqual([['CopyFieldData']]);
    expect((await raw(store, namespace, 3))!.get('heading')).toBe('t3');
    expect((await raw(store, namespace, 7))!.get('heading')).toBe('edited');
    expect((await raw(store, namespace, 3))!.get('title')).toBe('t3');
    const record = await new Recorder(store, control).get(`schema:${namespace}/Survey@v1-v2`);
    expect(record?.state).toBe('applied');

    // After: the plain model, no fallbacks; saves write only the new name.
    const after = await factory.get('Survey');
    expect(after).not.toBe(during);
    expect(after.fields.heading.renamedFrom).toBeUndefined();
    const list = await factory.list();
    expect(list[0]).toMatchObject({ name: 'Survey', version: 2, appliedVersion: 2, deleted: false });
    expect(list[0].orphans.map((o) => o.id)).toEqual(['property:Answer.title@v2']);
    expect((await factory.schemaMigrations('Survey')).map((m) => m.status)).toEqual(['applied']);
  });

  it('add: an indexed field with a default is written so that queries find it; an unindexed one only defaults on load', async () => {
    const { store, factory, namespace } = await setup([{ name: 'title', type: 'string', default: 'x' }]);
    for (let i = 1; i <= 6; i++) await put(store, namespace, i, { title: 'x' });
    await factory.update('Survey', (d) => ({ fields: [...d.fields, { name: 'colour', type: 'string', default: 'blue' }, { name: 'meta', type: 'json', default: { a: 1 } }] }));
    const during = await factory.get('Survey');
    expect((await during.get(store, 1))!.values).toEqual({ title: 'x', colour: 'blue', meta: { a: 1 } });
    expect(await during.query(store, { where: { colour: 'blue' } })).toHaveLength(0);
    await factory.applyPendingSchema('Survey');
    expect(await (await factory.get('Survey')).query(store, { where: { colour: 'blue' } })).toHaveLength(6);
    expect((await raw(store, namespace, 1))!.has('meta')).toBe(false);
  });

  it('remove then cleanup: data kept and orphaned; cleanup removes it after the retention only, through the runner', async () => {
    const { store, factory, namespace } = await setup([
      { name: 'title', type: 'string', default: 'x' },
      { name: 'legacy', type: 'string', nullable: true },
    ]);
    for (let i = 1; i <= 4; i++) await put(store, namespace, i, { title: 'x', legacy: `l${i}` });
    await factory.update('Survey', (d) => ({ fields: d.fields.filter((f) => f.name !== 'legacy') }));
    expect(await factory.applyPendingSchema('Survey')).toEqual([]);
    expect((await raw(store, namespace, 2))!.get('legacy')).toBe('l2');
    expect((await (await factory.get('Survey')).get(store, 2))!.values).toEqual({ title: 'x' });

    expect(await factory.cleanupSchema()).toEqual([]);
    expect((await raw(store, namespace, 2))!.get('legacy')).toBe('l2');
    const later = new Date(Date.now() + 31 * DAY);
    const dry = await factory.cleanupSchema({ now: later, dryRun: true });
    expect(dry.map((o) => o.id)).toEqual(['property:Answer.legacy@v2']);
    expect((await raw(store, namespace, 2))!.get('legacy')).toBe('l2');
    await factory.cleanupSchema({ now: later });
    for (let i = 1; i <= 4; i++) expect((await raw(store, namespace, i))!.has('legacy')).toBe(false);
    expect((await raw(store, namespace, 2))!.get('title')).toBe('x');
    expect((await factory.list())[0].orphans).toEqual([]);
  });

  it('each lossless conversion: read converted while the plan waits, stored converted after, saves write the new type', async () => {
    const { store, factory, namespace } = await setup([
      { name: 'n', type: 'integer', nullable: true },
      { name: 'tag', type: 'string', nullable: true },
      { name: 'note', type: 'string', nullable: true },
      { name: 'text', type: 'string', nullable: true },
    ]);
    for (let i = 1; i <= 7; i++) await put(store, namespace, i, { n: i, tag: `t${i}`, note: `not json ${i}`, text: `x${i}` });
    await factory.update('Survey', (d) => ({
      fields: d.fields.map((f) => {
        if (f.name === 'n') return { ...f, type: 'double' as const };
        if (f.name === 'tag') return { id: f.id, name: 'tag', type: 'array' as const, items: { type: 'string' as const } };
        if (f.name === 'note') return { id: f.id, name: 'note', type: 'json' as const, nullable: true };
        return { ...f, indexed: false };
      }),
    }));
    expect((await factory.schemaMigrations('Survey'))[0].status).toBe('approved');
    const during = await factory.get('Survey');
    expect((await during.get(store, 2))!.values).toEqual({ n: 2, tag: ['t2'], note: 'not json 2', text: 'x2' });
    const one = (await during.get(store, 1))!;
    await during.save(store, one);
    expect((await raw(store, namespace, 1))!.typeOf('n')).toBe('double');
    expect((await raw(store, namespace, 1))!.get('tag')).toEqual(['t1']);

    await factory.applyPendingSchema('Survey');
    for (let i = 1; i <= 7; i++) {
      const e = (await raw(store, namespace, i))!;
      expect(e.typeOf('n')).toBe('double');
      expect(e.get('n')).toBe(i);
      expect(e.get('tag')).toEqual([`t${i}`]);
      expect(e.get('note')).toBe(JSON.stringify(`not json ${i}`));
      expect(e.isIndexed('note')).toBe(false);
      expect(e.isIndexed('text')).toBe(false);
    }
    expect((await (await factory.get('Survey')).get(store, 5))!.values).toEqual({ n: 5, tag: ['t5'], note: 'not json 5', text: 'x5' });
  });

  it('a lossy type change is refused and nothing changes; forced with a converter it waits for approval, which every path respects', async () => {
    const { store, factory, namespace } = await setup([{ name: 'age', type: 'string', nullable: true }]);
    for (let i = 1; i <= 6; i++) await put(store, namespace, i, { age: String(20 + i) });
    const toInteger = (d: { fields: readonly FieldInput[] }) => ({ fields: d.fields.map((f) => ({ id: f.id, name: f.name, type: 'integer' as const, nullable: true })) });
    const refused = await rejection(factory.update('Survey', toInteger));
    expect(isDsMigrateError(refused, 'MODEL_DEFINITION')).toBe(true);
    expect(refused.message).toMatch(/"Survey".*field "age" changes type from string to integer/);
    expect((await factory.getDefinition('Survey')).version).toBe(1);

    await factory.update('Survey', toInteger, { force: true, converters: { age: (v) => Number(v) }, autoApply: true });
    const [pending] = await factory.schemaMigrations('Survey');
    expect(pending.status).toBe('pending');
    expect((await raw(store, namespace, 1))!.get('age')).toBe('21');
    // Every way to run it without approval: apply all (stops), apply that version (refused), autoApply (did not run it).
    expect(await factory.applyPendingSchema('Survey')).toEqual([]);
    const unapproved = await rejection(factory.applyPendingSchema('Survey', { version: 2 }));
    expect(isDsMigrateError(unapproved, 'BAD_INPUT')).toBe(true);
    expect(unapproved.message).toContain('needs approval');
    expect((await raw(store, namespace, 1))!.get('age')).toBe('21');
    // This process holds the converter: reads convert meanwhile.
    expect((await (await factory.get('Survey')).get(store, 1))!.values).toEqual({ age: 21 });

    await factory.approveSchema('Survey', 2);
    await factory.applyPendingSchema('Survey', { version: 2 });
    for (let i = 1; i <= 6; i++) expect((await raw(store, namespace, i))!.get('age')).toBe(20 + i);
  });

  it('a converter that throws fails the plan naming the key; finished batches stay converted; a fixed converter resumes', async () => {
    const { store, factory, namespace } = await setup([{ name: 'age', type: 'string', nullable: true }]);
    for (let i = 1; i <= 20; i++) await put(store, namespace, i, { age: i === 17 ? 'seventeen' : String(i) });
    const strict = (v: unknown) => {
      const n = Number(v);
      if (!Number.isInteger(n)) throw new Error(`not a number: ${String(v)}`);
      return n;
    };
    await factory.update('Survey', (d) => ({ fields: d.fields.map((f) => ({ id: f.id, name: f.name, type: 'integer' as const, nullable: true })) }), { force: true, converters: { age: strict } });
    await factory.approveSchema('Survey', 2);
    const failed = await rejection(factory.applyPendingSchema('Survey'));
    expect(failed.message).toContain('Answer');
    expect(failed.message).toContain('17');
    expect(failed.message).toContain('age');
    expect((await raw(store, namespace, 1))!.get('age')).toBe(1);
    expect((await raw(store, namespace, 17))!.get('age')).toBe('seventeen');
    expect((await factory.schemaMigrations('Survey'))[0].status).toBe('approved');

    await factory.applyPendingSchema('Survey', { converters: { age: (v) => (v === 'seventeen' ? 17 : strict(v)) } });
    expect((await raw(store, namespace, 17))!.get('age')).toBe(17);
    expect((await factory.schemaMigrations('Survey'))[0].status).toBe('applied');
  });

  it('kind rename: reads find uncopied entities in the old kind; the copy runs; the old kind is orphaned, then cleaned up', async () => {
    const { store, factory, namespace } = await setup([{ name: 'title', type: 'string', default: 'x' }], 'OldAnswer');
    for (let i = 1; i <= 5; i++) await put(store, namespace, i, { title: `t${i}` }, 'OldAnswer');
    await factory.update('Survey', { kind: 'NewAnswer' });
    const during = await factory.get('Survey');
    expect(during.kind).toBe('NewAnswer');
    const got = (await during.get(store, 2))!;
    expect(got.values).toEqual({ title: 't2' });
    got.values.title = 'saved during';
    await during.save(store, got);
    await factory.applyPendingSchema('Survey');
    expect((await raw(store, namespace, 2, 'NewAnswer'))!.get('title')).toBe('saved during');
    expect((await raw(store, namespace, 4, 'NewAnswer'))!.get('title')).toBe('t4');
    expect((await raw(store, namespace, 4, 'OldAnswer'))!.get('title')).toBe('t4');
    await factory.cleanupSchema({ now: new Date(Date.now() + 31 * DAY) });
    expect(await raw(store, namespace, 4, 'OldAnswer')).toBeUndefined();
    expect((await raw(store, namespace, 4, 'NewAnswer'))!.get('title')).toBe('t4');
  });

  it('a deleted definition keeps its data as an orphaned kind; cleanup refuses what a current definition uses', async () => {
    const { store, factory, namespace } = await setup([{ name: 'title', type: 'string', default: 'x' }]);
    await put(store, namespace, 1, { title: 'kept' });
    await factory.define({
      name: 'Other',
      kind: 'Shared',
      fields: [
        { name: 'a', type: 'string', nullable: true },
        { name: 'b', type: 'string', nullable: true },
      ],
    });
    await factory.update('Other', (d) => ({ fields: d.fields.filter((f) => f.name !== 'b') }));
    // A second definition over the same kind still reads "b".
    await factory.define({ name: 'Reader', kind: 'Shared', fields: [{ name: 'b', type: 'string', nullable: true }] });

    await factory.delete('Survey');
    expect(isDsMigrateError(await rejection(factory.get('Survey')), 'UNKNOWN_KIND')).toBe(true);
    const listed = await factory.list();
    expect(listed.find((d) => d.name === 'Survey')).toMatchObject({ deleted: true, orphans: [expect.objectContaining({ type: 'kind', kind: 'Answer' })] });
    expect((await raw(store, namespace, 1))!.get('title')).toBe('kept');

    const later = new Date(Date.now() + 31 * DAY);
    const inUse = await rejection(factory.cleanupSchema({ now: later }));
    expect(isDsMigrateError(inUse, 'BAD_INPUT')).toBe(true);
    expect(inUse.message).toContain('Shared.b');
    expect(inUse.message).toContain('"Reader"');
    expect((await raw(store, namespace, 1))!.get('title')).toBe('kept');

    await put(store, namespace, 9, { a: 'a', b: 'b' }, 'Shared');
    await factory.delete('Reader');
    expect((await factory.list()).find((d) => d.name === 'Reader')!.orphans).toEqual([]);
    const cleaned = await factory.cleanupSchema({ now: later });
    expect(cleaned.map((o) => o.id).sort()).toEqual(['kind:Answer@v2', 'property:Shared.b@v2']);
    expect(await raw(store, namespace, 1)).toBeUndefined();
    expect((await raw(store, namespace, 9, 'Shared'))!.toObject()).toEqual({ a: 'a' });
  });

  it('two processes updating one definition at once: each version gets exactly one plan, and plans run in version order', async () => {
    const { store, factory, namespace, control } = await setup([{ name: 'a', type: 'string', nullable: true }]);
    for (let i = 1; i <= 5; i++) await put(store, namespace, i, { a: `v${i}` });
    const other = new ModelFactory(await ctx.connect(), { namespace, controlNamespace: control, stalenessMs: 0 });
    const renameTo = (name: string) => (d: { fields: readonly FieldInput[] }) => ({ fields: d.fields.map((f) => ({ ...f, name })) });
    const retry = async (f: ModelFactory, name: string) => {
      for (;;) {
        try {
          return await f.update('Survey', renameTo(name));
        } catch (error) {
          if (!isDsMigrateError(error, 'CONFLICT')) throw error;
        }
      }
    };
    await Promise.all([retry(factory, 'b'), retry(other, 'c')]);
    const plans = await factory.schemaMigrations('Survey');
    expect(plans.map((p) => [p.plan.fromVersion, p.plan.toVersion])).toEqual([
      [1, 2],
      [2, 3],
    ]);
    const final = (await factory.getDefinition('Survey')).fields[0].name;
    // Reads while both wait fall back across both renames.
    expect((await (await factory.get('Survey')).get(store, 3))!.values).toEqual({ [final]: 'v3' });
    // Both processes apply at once: one holds the lease at a time, each plan runs once, in order.
    await Promise.all([factory.applyPendingSchema('Survey'), other.applyPendingSchema('Survey')]);
    expect((await factory.schemaMigrations('Survey')).map((p) => p.status)).toEqual(['applied', 'applied']);
    for (let i = 1; i <= 5; i++) expect((await raw(store, namespace, i))!.get(final)).toBe(`v${i}`);
    expect((await (await factory.get('Survey')).get(store, 3))!.values).toEqual({ [final]: 'v3' });
  });

  it('a plan for v3 waits for v2: applying v3 while v2 needs approval is refused and runs nothing', async () => {
    const { store, factory, namespace } = await setup([
      { name: 'age', type: 'string', nullable: true },
      { name: 'b', type: 'string', nullable: true },
    ]);
    await put(store, namespace, 1, { age: '5', b: 'x' });
    await factory.update('Survey', (d) => ({ fields: d.fields.map((f) => (f.name === 'age' ? { id: f.id, name: 'age', type: 'integer' as const, nullable: true } : f)) }), {
      force: true,
      converters: { age: (v) => Number(v) },
    });
    await factory.update('Survey', (d) => ({ fields: d.fields.map((f) => (f.name === 'b' ? { ...f, name: 'bee' } : f)) }));
    expect(await factory.applyPendingSchema('Survey')).toEqual([]);
    expect(isDsMigrateError(await rejection(factory.applyPendingSchema('Survey', { version: 3 })), 'BAD_INPUT')).toBe(true);
    expect((await raw(store, namespace, 1))!.has('bee')).toBe(false);
    await factory.approveSchema('Survey', 2);
    expect((await factory.applyPendingSchema('Survey')).map((p) => p.toVersion)).toEqual([2, 3]);
    expect((await raw(store, namespace, 1))!.get('bee')).toBe('x');
    expect((await raw(store, namespace, 1))!.get('age')).toBe(5);
  });

  it('stores a double as a double through the converted model', async () => {
    const { store, factory, namespace } = await setup([{ name: 'n', type: 'integer', nullable: true }]);
    await put(store, namespace, 1, { n: 3 });
    await factory.update('Survey', (d) => ({ fields: [{ ...d.fields[0], type: 'double' as const }] }), { autoApply: true });
    const e = (await raw(store, namespace, 1))!;
    expect(e.typeOf('n')).toBe('double');
    expect(e.get('n')).toEqual(new Double(3).value);
  });
});
