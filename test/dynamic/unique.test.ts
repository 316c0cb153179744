import { ModelFactory } from '../../src/dynamic';
import { UNIQUE_MARKER_KIND } from '../../src/model';
import { describeEachFlavour, uniqueProject } from '../support/emulators';

/** `unique` in a runtime definition is enforced as on a defineModel field: a marker per value, kept on save. */
describeEachFlavour('a runtime model with a unique field', (ctx) => {
  it('refuses a second entity with the same value, and moves the marker when the value changes', async () => {
    const store = await ctx.connect({ projectId: uniqueProject('du') });
    const factory = new ModelFactory(store, { namespace: 'forms' });
    const { model } = await factory.define({ name: 'Signup', kind: 'Signup', fields: [{ name: 'email', type: 'string', unique: true }] });
    await model.save(store, model.create(model.key(1), { email: 'a@x.org' }));
    await expect(model.save(store, model.create(model.key(2), { email: 'a@x.org' }))).rejects.toMatchObject({
      code: 'UNIQUE_VIOLATION',
      context: { kind: 'Signup', field: 'email', heldBy: '[forms]Signup:1' },
    });
    await model.save(store, model.create(model.key(1), { email: 'b@x.org' }));
    await model.save(store, model.create(model.key(2), { email: 'a@x.org' }));
    const markers: string[] = [];
    for await (const m of store.query({ kind: UNIQUE_MARKER_KIND, namespace: 'forms' })) markers.push(`${m.key.name} ${String(m.get('owner'))}`);
    expect(markers.sort()).toEqual(['Signup|email|s:a@x.org [forms]Signup:2', 'Signup|email|s:b@x.org [forms]Signup:1']);
  });
});
