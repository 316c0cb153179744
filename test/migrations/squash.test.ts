import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { migrate, plan, status } from '../../src/api';
import { Entity, Key, type Datastore } from '../../src/datastore';
import { LocalExecutor } from '../../src/executors';
import { buildGraph, foldOperations, graphFor, loadGraph, type LoadedMigration, type MigrationGraph, type SquashItem } from '../../src/migrations';
import { AddFieldData, CopyFieldData, CopyModelData, DeleteModelData, MapFunctionOnEntities, RemoveFieldData, type Operation } from '../../src/operations';
import { runCli, tempApp } from '../support/cli';
import { describeEachFlavour, uniqueProject } from '../support/emulators';
import { incrementOp } from '../support/people';

const items = (...operations: Operation[]): SquashItem[] => operations.map((operation, index) => ({ migration: { name: `000${index + 1}_x` } as LoadedMigration, index, operation }));
const kept = (...operations: Operation[]) => foldOperations(items(...operations)).kept.map((i) => i.operation);

describe('folding a squashed range', () => {
  const add = new AddFieldData('Person', 'tmp', { default: 1 });
  it('leaves out an AddFieldData whose field the next operation removes over the same scope', () => {
    const remove = new RemoveFieldData('Person', 'tmp');
    const { dropped } = foldOperations(items(add, remove));
    expect(dropped.map((d) => [d.item.operation, d.by.operation])).toEqual([[add, remove]]);
    expect(dropped[0].why).toMatch(/Remove Person.tmp deletes the field wherever it was written/);
    expect(kept(add, new RemoveFieldData('Person', 'tmp', { reverse: 'noop' }))).toHaveLength(1);
  });

  it('keeps it when the remove would re-add a default on back-out, the scopes differ, or another operation comes between', () => {
    // Backing out the originals re-adds the default then removes the field; backing out the remove alone would leave the default.
    expect(kept(add, new RemoveFieldData('Person', 'tmp', { reverse: { default: 2 } }))).toHaveLength(2);
    expect(kept(add, new RemoveFieldData('Person', 'tmp', { namespace: 'tenant-b' }))).toHaveLength(2);
    expect(kept(add, new RemoveFieldData('Person', 'tmp', { filter: { status: 'active' } }))).toHaveLength(2);
    expect(kept(add, new RemoveFieldData('Person', 'other'))).toHaveLength(2);
    expect(kept(add, new AddFieldData('Person', 'x', { default: 1 }), new RemoveFieldData('Person', 'tmp'))).toHaveLength(3);
  });

  it('leaves out field changes of a kind that the next operation deletes entirely, in a chain', () => {
    const ops = [new CopyFieldData('Audit', 'a', 'b'), new AddFieldData('Audit', 'tmp', { default: 1 }), new RemoveFieldData('Audit', 'tmp'), new DeleteModelData('Audit', { namespace: '*' })];
    const { kept: left, dropped } = foldOperations(items(...ops));
    expect(left.map((i) => i.operation)).toEqual([ops[3]]);
    expect(dropped.map((d) => d.item.index)).toEqual([1, 2, 0]);
  });

  it('keeps what a delete does not make pointless: a filtered or reversible-as-noop delete, copies to other kinds, and anything holding a function', () => {
    const copy = new CopyFieldData('Audit', 'a', 'b');
    expect(kept(copy, new DeleteModelData('Audit', { filter: { a: 1 } }))).toHaveLength(2);
    expect(kept(copy, new DeleteModelData('Audit', { reverse: 'noop' }))).toHaveLength(2);
    expect(kept(new CopyFieldData('Audit', 'a', 'b', { namespace: ['', 'x'] }), new DeleteModelData('Audit'))).toHaveLength(2);
    expect(kept(new CopyModelData('Audit', 'AuditCopy'), new DeleteModelData('Audit'))).toHaveLength(2);
    expect(kept(new MapFunctionOnEntities('Audit', (e) => void e.set('n', 1)), new DeleteModelData('Audit'))).toHaveLength(2);
    expect(kept(new AddFieldData('Audit', 'n', { default: (e) => String(e.get('a')) }), new DeleteModelData('Audit'))).toHaveLength(2);
  });
});

const loaded = (app: string, name: string, dependencies: string[], replaces?: string[]): LoadedMigration =>
  ({ id: `${app}:${name}`, app, name, file: `/m/${name}.ts`, checksum: name, dependencies, ...(replaces ? { replaces } : {}), definition: { operations: [] } }) as unknown as LoadedMigration;

describe('the graph of a squashed migration', () => {
  const originals = [loaded('a', '0001_x', []), loaded('a', '0002_y', ['a:0001_x']), loaded('a', '0003_z', ['a:0002_y'])];
  const squashed = loaded('a', '0001_squashed_0002_y', [], ['a:0001_x', 'a:0002_y']);
  const later = loaded('a', '0004_w', ['a:0002_y']);
  const other = loaded('b', '0001_b', ['a:0001_x']);
  const applied = (...ids: string[]) => new Map(ids.map((id) => [id, { state: 'applied' as const }]));
  const ids = (g: MigrationGraph) => g.ordered.map((m) => m.id);

  it('uses the squashed migration where none, all, or it itself is recorded, and the replaced ones where only some are', () => {
    const graph = buildGraph([...originals.slice(0, 2), squashed, later]);
    expect(ids(graph)).toEqual(['a:0001_squashed_0002_y', 'a:0004_w']);
    expect(graph.byId.get('a:0004_w')!.dependencies).toEqual(['a:0001_squashed_0002_y']);
    expect(graphFor(graph, applied('a:0001_x', 'a:0002_y'))).toMatchObject({ graph, replacedApplied: ['a:0001_squashed_0002_y'] });
    expect(graphFor(graph, applied('a:0001_squashed_0002_y')).graph).toBe(graph);
    const partial = graphFor(graph, applied('a:0001_x'));
    expect(ids(partial.graph)).toEqual(['a:0001_x', 'a:0002_y', 'a:0004_w']);
    expect(partial.replacedApplied).toEqual([]);
  });

  it('points a dependency on the squashed migration at its last replaced one where those are in use, and one on a deleted replaced one at it', () => {
    const dependent = loaded('a', '0004_w', ['a:0001_squashed_0002_y']);
    const partial = graphFor(buildGraph([...originals.slice(0, 2), squashed, dependent, other]), applied('a:0001_x')).graph;
    expect(partial.byId.get('a:0004_w')!.dependencies).toEqual(['a:0002_y']);
    // Release 2: the replaced files are gone; another app still names one of them.
    const released = buildGraph([squashed, later, other]);
    expect(ids(released)).toEqual(['a:0001_squashed_0002_y', 'a:0004_w', 'b:0001_b']);
    expect(released.byId.get('b:0001_b')!.dependencies).toEqual(['a:0001_squashed_0002_y']);
    expect(() => graphFor(released, applied('a:0001_x'))).toThrow(
      /applied only a:0001_x of them, and the files of a:0001_x, a:0002_y are gone\. Run `dsmigrate migrate` with the release that still has the replaced files/,
    );
  });

  it('refuses two squashed migrations of one migration, and a squashed migration that depends on what it replaces', () => {
    expect(() => buildGraph([...originals, squashed, loaded('a', '0002_squashed', [], ['a:0002_y', 'a:0003_z'])])).toThrow(/both replace a:0002_y/);
    expect(() => buildGraph([...originals, loaded('a', '0002_squashed', ['a:0002_y'], ['a:0002_y', 'a:0003_z'])])).toThrow(/depends on a:0002_y, which it replaces/);
  });
});

const file = (imports: string[], operations: string[]): string =>
  `import { defineMigration, ${imports.join(', ')} } from 'datastore-migrate';\nexport default defineMigration({ operations: [${operations.join(', ')}] });\n`;

const FIVE: Record<string, string> = {
  'migrations/0001_colour.ts': file(['AddFieldData'], ["new AddFieldData('Person', 'colour', { default: 'blue' })"]),
  'migrations/0002_tmp.ts': file(['AddFieldData'], ["new AddFieldData('Person', 'tmp', { default: 1 })"]),
  'migrations/0003_drop_tmp.ts': file(['RemoveFieldData'], ["new RemoveFieldData('Person', 'tmp', { reverse: 'noop' })"]),
  'migrations/0004_count.ts': file(['MapFunctionOnEntities'], [incrementOp('count')]),
  'migrations/0005_shade.ts': file(['AddFieldData', 'CopyModelData'], ["new CopyModelData('Person', 'PersonCopy')", "new AddFieldData('Person', 'shade', { default: 'dark', indexed: false })"]),
  'migrations/0006_late.ts': file(['AddFieldData'], ["new AddFieldData('Person', 'late', { default: true })"]),
};
const SQUASHED = '0001_squashed_0005_shade';

describe('dsmigrate squash refuses bad input, writing nothing', () => {
  const cases: [string, Record<string, string>, string[], RegExp][] = [
    ['an unknown migration', {}, ['default', '0001', '0009'], /Unknown target "default:0009"/],
    ['a range across apps', { 'billing/0001_invoices.ts': FIVE['migrations/0001_colour.ts'] }, ['default', '0001', 'billing:0001'], /billing:0001_invoices is in app "billing", not "default"/],
    ['a range in the wrong order', {}, ['default', '0003', '0002'], /default:0003_drop_tmp comes after default:0002_tmp/],
    [
      'a range that is not one line of history',
      {
        'migrations/0003_drop_tmp.ts': FIVE['migrations/0003_drop_tmp.ts'].replace('defineMigration({', "defineMigration({ dependencies: ['0001_colour'],"),
        'migrations/0004_count.ts': FIVE['migrations/0004_count.ts'].replace('defineMigration({', "defineMigration({ dependencies: ['0002_tmp', '0003_drop_tmp'],"),
      },
      ['default', '0002', '0004'],
      /not one line of history: default:0003_drop_tmp .* does not depend on default:0002_tmp/,
    ],
    [
      'a migration outside the range that depends on its middle',
      { 'billing/0001_invoices.ts': FIVE['migrations/0001_colour.ts'].replace('defineMigration({', "defineMigration({ dependencies: ['default:0002_tmp'],") },
      ['default', '0001', '0004'],
      /billing:0001_invoices .* depends on default:0002_tmp, in the middle of the range default:0001_colour..default:0004_count\. Squash up to default:0002_tmp or from after it, or make billing:0001_invoices depend on default:0004_count instead/,
    ],
  ];
  it.each(cases)('%s: exit 2, naming the migration and the fix', async (_, extra, args, message) => {
    const app = tempApp({
      ...FIVE,
      ...extra,
      ...(Object.keys(extra).some((f) => f.startsWith('billing/')) ? { 'dsmigrate.config.json': JSON.stringify({ migrations: { default: 'migrations', billing: 'billing' } }) } : {}),
    });
    const before = readdirSync(path.join(app, 'migrations'));
    const result = await runCli(['squash', ...args], { cwd: app, env: process.env });
    expect(result.stderr).toMatch(message);
    expect(result.code).toBe(2);
    expect(readdirSync(path.join(app, 'migrations'))).toEqual(before);
  });
});

describeEachFlavour('a squashed migration on live stores', (ctx) => {
  const N = 20;
  const projects = new Map<Datastore, string>();
  const envOf = (store: Datastore) => ({ ...ctx.env(), DATASTORE_PROJECT_ID: projects.get(store), GOOGLE_CLOUD_PROJECT: projects.get(store) });
  const connect = async () => {
    const projectId = uniqueProject('sq');
    const store = await ctx.connect({ projectId });
    projects.set(store, projectId);
    await store.save(Array.from({ length: N }, (_, i) => Entity.from(Key.of('Person', i % 2 ? i + 1 : `p${i + 1}`), { name: `n${i}` })));
    return store;
  };
  const sources = (app: string) => [{ app: 'default', dir: path.join(app, 'migrations') }];
  const run = async (store: Datastore, app: string, target?: string) => migrate({ store, graph: await loadGraph(sources(app)), executor: new LocalExecutor() }, { target });
  const states = async (store: Datastore, app: string) =>
    (await status({ store, graph: await loadGraph(sources(app)) })).migrations.map((m) => [m.id.slice('default:'.length), m.state, m.replaces?.length ?? 0]);
  const pending = async (store: Datastore, app: string) => (await plan({ store, graph: await loadGraph(sources(app)) })).migrations.map((m) => m.id);
  /** Each Person as before the migrations, but for the counter the map's reverse took back to 0. */
  const backedOut = (d: Record<string, unknown>) =>
    Object.values(d).every((p) => {
      const props = p as Record<string, { integerValue?: string }>;
      return Object.keys(props).sort().join() === 'count,name' && props.count.integerValue === '0';
    });
  /** Every Person's and PersonCopy's properties, as stored (the protobuf values, index setting included), by key. */
  const data = async (store: Datastore) => {
    const out: Record<string, unknown> = {};
    for (const kind of ['Person', 'PersonCopy']) for await (const e of store.query({ kind })) out[e.key.toString()] = Object.fromEntries(e.names().map((name) => [name, e.raw(name)]));
    return out;
  };

  it('runs on a fresh store, counts as applied where the originals ran, lets a store that ran some finish them, and survives deleting the originals', async () => {
    const app = tempApp(FIVE);
    const [fresh, ran, some] = await Promise.all([connect(), connect(), connect()]);
    await run(ran, app);
    await run(some, app, '0002');

    const squash = await runCli(['squash', 'default', '0001', '0005'], { cwd: app, env: ctx.env() });
    expect(squash.code).toBe(0);
    const written = readFileSync(path.join(app, 'migrations', `${SQUASHED}.ts`), 'utf8');
    expect(written).toContain("replaces: ['0001_colour', '0002_tmp', '0003_drop_tmp', '0004_count', '0005_shade'],");
    expect(written).toContain("import m0004 from './0004_count.js';");
    expect(written).toMatch(
      /Left out, as a later operation makes them pointless:\n\/\/ - 0002_tmp operation 1 \(Set Person.tmp to 1 where missing\): Remove Person.tmp .*deletes the field wherever it was written \(0003_drop_tmp operation 1\)/,
    );
    expect(written).not.toMatch(/new AddFieldData\('Person', 'tmp'/);
    copyReferenceIn(app);

    expect((await run(fresh, app)).applied).toEqual([`default:${SQUASHED}`, 'default:0006_late']);
    expect((await run(ran, app)).applied).toEqual([]);
    expect((await run(some, app)).applied).toEqual(['default:0003_drop_tmp', 'default:0004_count', 'default:0005_shade', 'default:0006_late']);

    const expected = await data(ran);
    const person = Object.values(expected)[0] as Record<string, { stringValue?: string; integerValue?: string; excludeFromIndexes?: boolean }>;
    expect(person.colour.stringValue).toBe('blue');
    expect(person.count.integerValue).toBe('1');
    expect(person.shade).toMatchObject({ stringValue: 'dark', excludeFromIndexes: true });
    expect(person.tmp).toBeUndefined();
    expect(Object.keys(expected)).toHaveLength(2 * N);
    expect(await data(fresh)).toEqual(expected);
    expect(await data(some)).toEqual(expected);

    expect(await states(fresh, app)).toEqual([
      [SQUASHED, 'applied', 5],
      ['0006_late', 'applied', 0],
    ]);
    expect(await states(ran, app)).toEqual(await states(fresh, app));
    // Once it ran the rest of the replaced migrations, the squashed one counts as applied there too.
    expect(await states(some, app)).toEqual(await states(fresh, app));

    // Release 2: the replaced files are deleted, `replaces` kept.
    for (const name of ['0001_colour', '0002_tmp', '0003_drop_tmp', '0004_count', '0005_shade']) rmSync(path.join(app, 'migrations', `${name}.ts`));
    for (const store of [fresh, ran, some]) {
      expect(await states(store, app)).toEqual([
        [SQUASHED, 'applied', 5],
        ['0006_late', 'applied', 0],
      ]);
      expect(await pending(store, app)).toEqual([]);
      expect((await run(store, app)).applied).toEqual([]);
      expect(await data(store)).toEqual(expected);
    }

    // Backing out through the squashed migration undoes its operations where it ran...
    expect((await run(fresh, app, 'zero')).unapplied).toEqual(['default:0006_late', `default:${SQUASHED}`]);
    const undone = await data(fresh);
    expect(Object.keys(undone)).toHaveLength(N);
    expect(backedOut(undone)).toBe(true);
    expect(await states(fresh, app)).toEqual([
      [SQUASHED, 'pending', 5],
      ['0006_late', 'pending', 0],
    ]);
    // ...and is refused, changing nothing, where the replaced migrations ran one by one and their files are gone.
    await expect(run(ran, app, 'zero')).rejects.toThrow(
      /Cannot back out default:0001_squashed_0005_shade .* applied the migrations .* one by one .*their files are gone\. Back out with the release that still has those files/,
    );
    expect(await data(ran)).toEqual(expected);
  });

  it('backs out a store that ran the replaced migrations through them while their files are there', async () => {
    const app = tempApp(FIVE);
    const store = await connect();
    await run(store, app);
    expect((await runCli(['squash', 'default', '0001', '0005', '--name', 'people'], { cwd: app, env: ctx.env() })).code).toBe(0);
    expect(existsSync(path.join(app, 'migrations', '0001_people.ts'))).toBe(true);
    const statusText = await runCli(['status'], { cwd: app, env: envOf(store) });
    expect(statusText.stdout).toMatch(/0001_people \(replaces 5 migrations\)\s+applied/);
    expect((await run(store, app, 'zero')).unapplied).toEqual(['default:0006_late', 'default:0005_shade', 'default:0004_count', 'default:0003_drop_tmp', 'default:0002_tmp', 'default:0001_colour']);
    const undone = await data(store);
    expect(backedOut(undone)).toBe(true);
    expect(await pending(store, app)).toEqual(['default:0001_people', 'default:0006_late']);
  });
});

/** What docs/squashing.md asks before the squashed file is released: the operation taken from 0004_count copied into it. */
function copyReferenceIn(app: string): void {
  const squashed = path.join(app, 'migrations', `${SQUASHED}.ts`);
  const text = readFileSync(squashed, 'utf8')
    .replace("import m0004 from './0004_count.js';\n", '')
    .replace(/m0004\.operations\[0\]/, incrementOp('count'))
    .replace('import { ', 'import { MapFunctionOnEntities, ');
  writeFileSync(squashed, text);
}
