import { Datastore, Entity, Key } from '../../src/datastore';
import { ModelFactory } from '../../src/dynamic';
import { Recorder } from '../../src/migrations';
import { useDatastoreProxy } from '../support/datastore-proxy';
import { describeEachFlavour } from '../support/emulators';
import { expectEveryFault, FAST_RETRY, FAULTS, missingFaults, rawLookup, RICH, type RawEntity } from './support';

const N = 60;
/** Models planned one after another, each over its own kind, until the proxy has answered every fault code. */
const MAX_MODELS = 8;
/** The properties the plan touches; every other one must come back as it was stored. */
const TOUCHED = ['title', 'heading', 'n', 'colour'];
const untouched = (e: RawEntity) => Object.fromEntries(Object.entries(e.properties ?? {}).filter(([name]) => !TOUCHED.includes(name)));

/**
 * A runtime model's schema plan (a rename, a lossless conversion and an indexed default), defined and applied
 * through 5% faults of every kind: the definition's version and its plan commit together, the plan runs through
 * the migrations runner, and the data ends exact at the protobuf level.
 */
describeEachFlavour('a runtime schema plan under Datastore faults', (ctx) => {
  const proxy = useDatastoreProxy(() => ctx.host, FAULTS);

  it('is recorded once, applied once, and leaves every entity exact', async () => {
    const namespace = 'schema-faults';
    const control = 'schema-faults-ctl';
    const direct = await ctx.connect();
    const store = await Datastore.connect({ emulatorHost: proxy().host, projectId: ctx.projectId, retry: FAST_RETRY });
    try {
      const factory = new ModelFactory(store, { namespace, controlNamespace: control, stalenessMs: 0, schemaBatchSize: 4, register: false });
      for (let m = 0; m < MAX_MODELS && (m === 0 || missingFaults(proxy()).length > 0); m++) {
        const name = `Survey${m}`;
        const keys = Array.from({ length: N }, (_, i) => Key.of(`Answer${m}`, i + 1, { namespace }));
        await direct.save(
          keys.map((key, i) => {
            const e = Entity.from(key, { title: `t${i}`, n: i });
            for (const [property, value] of Object.entries(RICH)) e.setRaw(property, value);
            return e;
          }),
        );
        const before = await rawLookup(ctx.host, ctx.projectId, keys);

        await factory.define({
          name,
          kind: `Answer${m}`,
          fields: [
            { name: 'title', type: 'string', default: 'Untitled' },
            { name: 'n', type: 'integer', nullable: true },
          ],
        });
        await factory.update(name, (d) => ({
          fields: [...d.fields.map((f) => (f.name === 'title' ? { ...f, name: 'heading' } : { ...f, type: 'double' as const })), { name: 'colour', type: 'string' as const, default: 'blue' }],
        }));
        const ran = await factory.applyPendingSchema(name);
        expect(ran.map((p) => p.toVersion)).toEqual([2]);
        expect((await factory.schemaMigrations(name)).map((s) => [s.plan.toVersion, s.status])).toEqual([[2, 'applied']]);
        expect(await new Recorder(direct, control).get(`schema:${namespace}/${name}@v1-v2`)).toMatchObject({ state: 'applied' });

        const after = await rawLookup(ctx.host, ctx.projectId, keys);
        expect(after.size).toBe(N);
        for (const [i, key] of keys.entries()) {
          const path = JSON.stringify(key.path.map((e) => [e.kind, e.name ?? String(e.id)]));
          const was = before.get(path)!;
          const now = after.get(path)!;
          expect(untouched(now)).toEqual(untouched(was));
          expect(now.properties!.heading).toEqual(was.properties!.title);
          expect(now.properties!.title).toEqual(was.properties!.title);
          expect(now.properties!.n).toMatchObject({ doubleValue: i, valueType: 'doubleValue' });
          expect(now.properties!.colour).toMatchObject({ stringValue: 'blue', excludeFromIndexes: false });
        }
      }
    } finally {
      await store.close();
    }
    expectEveryFault(proxy());
  });
});
