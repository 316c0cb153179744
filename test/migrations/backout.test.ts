import { renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Entity, Key, type Datastore } from '../../src/datastore';
import { jsonEvents, runCli, tempApp } from '../support/cli';
import { describeEachFlavour, uniqueProject } from '../support/emulators';
import { countOf, personValues, seedPeople } from '../support/people';

const N = 120;

const file = (imports: string, operations: string): string => `
import { defineMigration, ${imports} } from 'datastore-migrate';
export default defineMigration({ operations: [${operations}] });
`;
const ADD_A = file('AddFieldData', "new AddFieldData('Person', 'a', { default: 1 })");
const ADD_B = file('AddFieldData', "new AddFieldData('Person', 'b', { default: 1 })");
const DELETE_AUDIT = (options = '') => file('DeleteModelData', `new DeleteModelData('Audit'${options ? `, ${options}` : ''})`);

describeEachFlavour('every back-out has a way out', (ctx) => {
  async function fresh(): Promise<{ store: Datastore; env: NodeJS.ProcessEnv }> {
    const projectId = uniqueProject('back');
    const store = await ctx.connect({ projectId });
    await seedPeople(store, N);
    await store.save(Array.from({ length: 30 }, (_, i) => Entity.from(Key.of('Audit', i + 1), { at: i })));
    return { store, env: { ...ctx.env(), DATASTORE_PROJECT_ID: projectId, GOOGLE_CLOUD_PROJECT: projectId } };
  }
  const states = async (app: string, env: NodeJS.ProcessEnv): Promise<string[][]> =>
    (JSON.parse((await runCli(['status', '--json'], { cwd: app, env })).stdout) as { name: string; state: string }[]).map((r) => [r.name, r.state]);
  const audits = async (store: Datastore): Promise<number> => {
    let n = 0;
    for await (const keys of store.keys({ kind: 'Audit' })) n += keys.length;
    return n;
  };

  it('past a DeleteModelData: migrate refuses naming both ways out, plan marks it, and migrate --fake records the back-out changing nothing', async () => {
    const { store, env } = await fresh();
    const app = tempApp({ 'migrations/0001_a.ts': ADD_A, 'migrations/0002_drop_audit.ts': DELETE_AUDIT(), 'migrations/0003_b.ts': ADD_B });
    expect((await runCli(['migrate'], { cwd: app, env })).code).toBe(0);
    expect(await audits(store)).toBe(0);

    const refused = await runCli(['migrate', '0001'], { cwd: app, env });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/Cannot unapply default:0002_drop_audit .*Delete every Audit.* is irreversible\. Declare `reverse: 'noop'`.*`dsmigrate migrate <target> --fake`/s);

    const plan = await runCli(['plan', '0001'], { cwd: app, env });
    expect(plan.code).toBe(0);
    expect(plan.stdout).toMatch(/unapply default:0003_b[\s\S]*unapply default:0002_drop_audit\n\s+Delete every Audit.*: IRREVERSIBLE/);
    expect(plan.stdout).toMatch(/`dsmigrate migrate` refuses this back-out.*`dsmigrate migrate 0001 --fake`/s);

    const faked = await runCli(['migrate', '0001', '--fake'], { cwd: app, env });
    expect(faked.code).toBe(0);
    expect(await states(app, env)).toEqual([
      ['0001_a', 'applied'],
      ['0002_drop_audit', 'pending'],
      ['0003_b', 'pending'],
    ]);
    expect(countOf(await personValues(store, 'b'), 1)).toBe(N);
  });

  it("with reverse: 'noop' backs out leaving the data as it is, and plan says so", async () => {
    const { store, env } = await fresh();
    const app = tempApp({ 'migrations/0001_a.ts': ADD_A, 'migrations/0002_drop_audit.ts': DELETE_AUDIT("{ reverse: 'noop' }") });
    expect((await runCli(['migrate'], { cwd: app, env })).code).toBe(0);
    expect((await runCli(['plan', '0001'], { cwd: app, env })).stdout).toMatch(/Delete every Audit.*: left as it is \(reverse: 'noop'\)/);
    const back = await runCli(['migrate', '0001', '--json'], { cwd: app, env });
    expect({ code: back.code, stderr: back.stderr }).toEqual({ code: 0, stderr: '' });
    // A back-out of an applied migration starts afresh: it is not resuming anything.
    expect(jsonEvents(back).find((e) => e.event === 'migration-start')).toMatchObject({ migration: 'default:0002_drop_audit', resumed: false });
    expect(await states(app, env)).toEqual([
      ['0001_a', 'applied'],
      ['0002_drop_audit', 'pending'],
    ]);
    expect(await audits(store)).toBe(0);
    expect(countOf(await personValues(store, 'a'), 1)).toBe(N);
  });

  it('an irreversible operation that changed nothing before it failed does not block the back-out', async () => {
    const { store, env } = await fresh();
    const broken = file(
      'AddFieldData, MapFunctionOnEntities',
      "new AddFieldData('Person', 'c', { default: 1 }), new MapFunctionOnEntities('Person', () => { throw new Error('broken from the start'); }, { shardCount: 1 })",
    );
    const app = tempApp({ 'migrations/0001_a.ts': ADD_A, 'migrations/0002_broken.ts': broken });
    const failed = await runCli(['migrate'], { cwd: app, env });
    expect(failed.code).toBe(1);
    // Printed once, with the one recovery story.
    expect(failed.stderr.split('broken from the start').length - 1).toBe(1);
    expect(failed.stderr).toMatch(/run `dsmigrate migrate` again.*`dsmigrate migrate --allow-changed`.*`dsmigrate migrate --restart default:0002_broken`/s);
    const back = await runCli(['migrate', '0001'], { cwd: app, env });
    expect({ code: back.code, stderr: back.stderr }).toEqual({ code: 0, stderr: expect.not.stringMatching(/irreversible/) as string });
    expect(countOf(await personValues(store, 'c'), 0)).toBe(N);
    expect(await states(app, env)).toEqual([
      ['0001_a', 'applied'],
      ['0002_broken', 'pending'],
    ]);
  });

  it('irreversible operations that ran everywhere and changed nothing (a kind with no entities, a field no entity has) do not block the back-out', async () => {
    const { store, env } = await fresh();
    const nothing = file('CopyFieldData, DeleteModelData', "new DeleteModelData('Auditt'), new CopyFieldData('Person', 'nicknam', 'displayName')");
    const app = tempApp({ 'migrations/0001_a.ts': ADD_A, 'migrations/0002_nothing.ts': nothing });
    expect((await runCli(['migrate'], { cwd: app, env })).code).toBe(0);
    const plan = await runCli(['plan', '0001'], { cwd: app, env });
    expect(plan.code).toBe(0);
    expect(plan.stdout).not.toMatch(/IRREVERSIBLE|refuses/);
    const back = await runCli(['migrate', '0001'], { cwd: app, env });
    expect({ code: back.code, stderr: back.stderr }).toEqual({ code: 0, stderr: expect.not.stringMatching(/irreversible/) as string });
    expect(await states(app, env)).toEqual([
      ['0001_a', 'applied'],
      ['0002_nothing', 'pending'],
    ]);
    expect(await audits(store)).toBe(30);
    expect(countOf(await personValues(store, 'a'), 1)).toBe(N);
  });

  it('fixing a failed map and running with --allow-changed keeps the done batches, as the failure says', async () => {
    const { store, env } = await fresh();
    const increment = (guard: string) =>
      file('MapFunctionOnEntities', `new MapFunctionOnEntities('Person', (p) => { ${guard} p.set('n', Number(p.get('n') ?? 0) + 1); }, { shardCount: 1, batchSize: 10 })`);
    const app = tempApp({ 'migrations/0001_n.ts': increment("if (p.key.name === 'p61') throw new Error('cannot handle p61');") });
    expect((await runCli(['migrate'], { cwd: app, env })).code).toBe(1);
    const partial = await personValues(store, 'n');
    expect(countOf(partial, 1)).toBeGreaterThan(0);
    expect((await runCli(['status'], { cwd: app, env })).stdout).toMatch(/`dsmigrate migrate --allow-changed` resumes with the fixed file/);
    writeFileSync(path.join(app, 'migrations/0001_n.ts'), increment(''));
    const fixed = await runCli(['migrate', '--allow-changed'], { cwd: app, env });
    expect(fixed.code).toBe(0);
    expect(countOf(await personValues(store, 'n'), 1)).toBe(N);
  });

  it('an applied migration whose dependency is not: status reports it, migrate refuses naming the fix, and the fix works', async () => {
    const { store, env } = await fresh();
    const app = tempApp({ 'migrations/0001_a.ts': ADD_A, 'migrations/0002_drop_audit.ts': DELETE_AUDIT(), 'migrations/0003_b.ts': ADD_B });
    const aside = path.join(app, '0002_drop_audit.ts.aside');
    // The user moves 0002 aside, applies the rest, and puts it back: 0003 is applied before its dependency.
    renameSync(path.join(app, 'migrations/0002_drop_audit.ts'), aside);
    expect((await runCli(['migrate'], { cwd: app, env })).code).toBe(0);
    renameSync(aside, path.join(app, 'migrations/0002_drop_audit.ts'));

    expect((await runCli(['status'], { cwd: app, env })).stdout).toMatch(/Inconsistent history: default:0003_b is applied, but its dependency default:0002_drop_audit is not/);
    const refused = await runCli(['migrate'], { cwd: app, env });
    expect(refused.code).toBe(2);
    const fix = /otherwise record default:0003_b unapplied, and what it changed stays, with `(dsmigrate migrate default:0001_a --fake)`/.exec(refused.stderr);
    expect(fix).not.toBeNull();
    expect(await audits(store)).toBe(30);

    expect((await runCli(fix![1].split(' ').slice(1), { cwd: app, env })).code).toBe(0);
    expect((await runCli(['migrate'], { cwd: app, env })).code).toBe(0);
    expect(await states(app, env)).toEqual([
      ['0001_a', 'applied'],
      ['0002_drop_audit', 'applied'],
      ['0003_b', 'applied'],
    ]);
    expect(await audits(store)).toBe(0);
  });
});
