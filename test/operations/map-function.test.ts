import { Double, Entity, Key, type Datastore, type ValueProto } from '../../src/datastore';
import { LocalExecutor } from '../../src/executors';
import { MapFunctionOnEntities, type MapFunction } from '../../src/operations';
import { runCli, tempApp } from '../support/cli';
import { describeEachFlavour, uniqueProject } from '../support/emulators';
import { LONG_TEXT, readKind, versions } from './dataset';

const N = 30;
const BIG = 9007199254740993n; // 2^53 + 1: a number would round it

/** Integers, a double that looks whole, an integer past 2^53, unindexed text and a timestamp: what a careless rewrite would change. */
async function seed(store: Datastore, kind: string): Promise<Key[]> {
  const entities = Array.from({ length: N }, (_, i) =>
    Entity.from(
      i % 2 ? Key.of(kind, i + 1) : Key.of(kind, `t${i}`),
      { n: i, counter: 0, ratio: new Double(2), big: BIG, bio: LONG_TEXT, at: new Date(Date.UTC(2020, 0, 1 + i)) },
      { excludeFromIndexes: ['bio'] },
    ),
  );
  await store.save(entities);
  return entities.map((e) => e.key);
}

function raws(entity: Entity): Record<string, ValueProto | undefined> {
  return Object.fromEntries(['n', 'ratio', 'big', 'bio', 'at'].map((name) => [name, entity.raw(name)]));
}

/** As users of @google-cloud/datastore write it: plain property access on the entity. */
const officialStyle = ((entity: Record<string, unknown>) => {
  entity.counter = 5;
  return entity;
}) as unknown as MapFunction;

describeEachFlavour('MapFunctionOnEntities written as with @google-cloud/datastore', (ctx) => {
  let store: Datastore;
  beforeAll(async () => {
    store = await ctx.connect();
  });

  async function run(kind: string, fn: MapFunction, options: { skipErrors?: boolean } = {}) {
    return new LocalExecutor().runOperation({ store, job: { namespace: '', id: `${kind}#1` }, operation: new MapFunctionOnEntities(kind, fn, options), migration: '0002_counter' });
  }

  it("entity.counter = n is written through set(), keeping every other property's raw value and index setting", async () => {
    await seed(store, 'Assigned');
    const before = new Map((await readKind(store, 'Assigned')).map((e) => [e.key.toString(), raws(e)]));
    expect(await run('Assigned', officialStyle)).toMatchObject({ scanned: N, changed: N, failed: 0 });
    for (const entity of await readKind(store, 'Assigned')) {
      expect(entity.get('counter')).toBe(5);
      expect(raws(entity)).toEqual(before.get(entity.key.toString()));
      expect(entity.isIndexed('bio')).toBe(false);
    }
  });

  it('a returned plain object fails the same way, whether spread from the entity or built from toObject()', async () => {
    const keys = await seed(store, 'Returned');
    const before = await versions(ctx, keys);
    const spread = ((entity: Entity) => ({ ...entity, counter: 5 })) as unknown as MapFunction;
    await expect(run('Returned', spread)).rejects.toMatchObject({
      message: expect.stringContaining("the function returned a plain object ({counter}), which is not saved: write entity.set('counter', value) instead"),
    });
    const rebuilt = ((entity: Entity) => ({ ...entity.toObject(), counter: 5 })) as unknown as MapFunction;
    await expect(run('Returned', rebuilt)).rejects.toMatchObject({ message: expect.stringMatching(/the function returned a plain object \(\{[^)]*\bcounter\b[^)]*\}\), which is not saved/) });
    expect(await versions(ctx, keys)).toEqual(before);
  });

  it("assigning one of the Entity's own names stops on the first entity even with skipErrors (a mistake in the function, not bad data), writing nothing", async () => {
    const keys = await seed(store, 'Skipped');
    const before = await versions(ctx, keys);
    const assignsData = ((entity: Record<string, unknown>) => {
      entity.data = { counter: 5 };
    }) as unknown as MapFunction;
    await expect(run('Skipped', assignsData, { skipErrors: true })).rejects.toMatchObject({ code: 'OPERATION_FAILED', message: expect.stringContaining('entity.set(') });
    expect(await versions(ctx, keys)).toEqual(before);
  });

  it("entity.set() and entity.data store the value, keep other properties' types, values and index settings", async () => {
    await seed(store, 'Written');
    const before = new Map((await readKind(store, 'Written')).map((e) => [e.key.toString(), raws(e)]));
    const result = await run('Written', (entity) => {
      entity.set('counter', Number(entity.get('counter')) + 1);
      entity.data.label = `n${String(entity.get('n'))}`;
    });
    expect(result).toMatchObject({ scanned: N, changed: N, failed: 0 });
    const after = await readKind(store, 'Written');
    expect(after).toHaveLength(N);
    for (const entity of after) {
      expect(entity.get('counter')).toBe(1);
      expect(entity.typeOf('counter')).toBe('integer');
      expect(entity.get('label')).toBe(`n${String(entity.get('n'))}`);
      expect(raws(entity)).toEqual(before.get(entity.key.toString()));
      expect(entity.get('big')).toBe(BIG);
      expect(entity.typeOf('ratio')).toBe('double');
      expect(entity.isIndexed('bio')).toBe(false);
    }
  });

  it('through the CLI, a map that reads and writes as with @google-cloud/datastore works, and migrate records it applied', async () => {
    const projectId = uniqueProject('m');
    const own = await ctx.connect({ projectId });
    await seed(own, 'Company');
    const app = tempApp({
      'migrations/0001_counter.ts': `import { defineMigration, MapFunctionOnEntities } from 'datastore-migrate';
export default defineMigration({
  operations: [
    new MapFunctionOnEntities('Company', (entity: any) => { if (entity.n >= 10) entity.counter = entity.counter + 5; return entity; }),
  ],
});
`,
    });
    const env = { ...ctx.env(), DATASTORE_PROJECT_ID: projectId, GOOGLE_CLOUD_PROJECT: projectId };
    const result = await runCli(['migrate'], { cwd: app, env });
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: expect.not.stringContaining('warning') as string });
    const companies = await readKind(own, 'Company');
    expect(companies.map((e) => [Number(e.get('n')) >= 10, e.get('counter')]).every(([big, counter]) => counter === (big ? 5 : 0))).toBe(true);
    expect(companies.filter((e) => e.get('counter') === 5)).toHaveLength(N - 10);
    const records = await readKind(own, '_dsmigrate_migration');
    expect(records.map((r) => r.get('state'))).toEqual(['applied']);
  });
});
