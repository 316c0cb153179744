import { appendFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Entity, Key, type Datastore } from '../../src/datastore';
import { describeEachFlavour, uniqueProject } from '../support/emulators';
import { jsonEvents, pausing, runCli, tempApp, waitForPause } from '../support/cli';

const N = 600;

/** A migration that adds 1 to `counter` on every Person, slowly enough to be interrupted. */
const INCREMENT = (delayMs = 0) => `
import { defineMigration, MapFunctionOnEntities } from 'datastore-migrate';
export default defineMigration({
  operations: [
    new MapFunctionOnEntities('Person', async (person) => {
      ${delayMs ? `await new Promise((r) => setTimeout(r, ${delayMs}));` : ''}
      person.set('counter', Number(person.get('counter') ?? 0) + 1);
    }, { batchSize: 25 }),
  ],
});
`;

const ADD_COLOUR = `
import { defineMigration, AddFieldData } from 'datastore-migrate';
export default defineMigration({ operations: [new AddFieldData('Person', 'colour', { default: 'blue' })] });
`;

async function seed(store: Datastore, n = N): Promise<void> {
  await store.save(Array.from({ length: n }, (_, i) => Entity.from(i % 2 ? Key.of('Person', i + 1) : Key.of('Person', `p${i + 1}`), { name: `n${i}` })));
}

async function snapshot(store: Datastore, kind = 'Person'): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for await (const e of store.query({ kind })) out[e.key.toString()] = e.toObject();
  return out;
}

async function counters(store: Datastore): Promise<number[]> {
  const values: number[] = [];
  for await (const e of store.query({ kind: 'Person' })) values.push(Number(e.get('counter') ?? 0));
  return values;
}

describeEachFlavour('dsmigrate migrate', (ctx) => {
  /** A project of the test's own: its data, records and lock are nobody else's. */
  async function fresh(): Promise<{ store: Datastore; env: NodeJS.ProcessEnv }> {
    const projectId = uniqueProject('r');
    const store = await ctx.connect({ projectId });
    return { store, env: { ...ctx.env(), DATASTORE_PROJECT_ID: projectId, GOOGLE_CLOUD_PROJECT: projectId } };
  }

  it('crashes mid-operation, stays running, and a rerun finishes without redoing anything', async () => {
    const { store, env: e } = await fresh();
    await seed(store);
    // A short lease, so that the killed run's lock expires while the rerun waits for it.
    const app = tempApp({ 'migrations/0001_increment.ts': INCREMENT(3), 'dsmigrate.config.json': JSON.stringify({ lockTtlSeconds: 2 }) });
    let kill: () => void = () => undefined;
    let killed = false;
    const first = runCli(['migrate', '--json', '--concurrency', '1'], {
      cwd: app,
      env: e,
      onSpawn: (k) => (kill = k),
    });
    // Kill as soon as some batches are committed.
    const started = Date.now();
    while (!killed && Date.now() - started < 60_000) {
      await new Promise((r) => setTimeout(r, 100));
      const done = (await counters(store)).filter((c) => c > 0).length;
      if (done >= 50) {
        kill();
        killed = true;
      }
    }
    const crashed = await first;
    expect(crashed.signal).toBe('SIGKILL');
    const status = await runCli(['status', '--json'], { cwd: app, env: e });
    expect(JSON.parse(status.stdout)[0]).toMatchObject({ name: '0001_increment', state: 'running' });
    const partial = await counters(store);
    expect(partial.some((c) => c === 0)).toBe(true);

    const rerun = await runCli(['migrate', '--json', '--wait-lock', '30'], { cwd: app, env: e });
    expect({ code: rerun.code, stderr: rerun.stderr, errors: jsonEvents(rerun).filter((x) => x.error) }).toEqual({ code: 0, stderr: '', errors: [] });
    expect(jsonEvents(rerun).find((x) => x.event === 'migration-start')).toMatchObject({ resumed: true });
    const final = await counters(store);
    expect(final).toHaveLength(N);
    expect(final.every((c) => c === 1)).toBe(true);
    const after = JSON.parse((await runCli(['status', '--json'], { cwd: app, env: e })).stdout);
    expect(after[0]).toMatchObject({ state: 'applied', progress: '1/1 ops' });
  });

  it('lets exactly one of two concurrent runs apply; the other exits 3 naming the holder', async () => {
    const { store, env: e } = await fresh();
    await seed(store);
    const app = tempApp({ 'migrations/0001_increment.ts': INCREMENT() });
    // The first run holds the lock, paused after a batch, until the test lets it go: which process races
    // ahead is not left to the scheduler.
    const pause = pausing(e, 1);
    const a = runCli(['migrate'], { cwd: app, env: pause.env });
    await waitForPause(pause.file, a);
    const b = await runCli(['migrate'], { cwd: app, env: e });
    expect(b.code).toBe(3);
    expect(b.stderr).toMatch(/Another run holds the migration lock: .+:\d+:[0-9a-f]+ \(migrate\)/);

    // With --wait-lock a third run waits for the first, then finds nothing left to do.
    const c = runCli(['migrate', '--wait-lock', '60'], { cwd: app, env: e });
    await new Promise((r) => setTimeout(r, 3000));
    rmSync(pause.file);
    const [first, third] = await Promise.all([a, c]);
    expect([first.code, third.code]).toEqual([0, 0]);
    expect(first.stderr).toMatch(/applied default:0001_increment/);
    expect(third.stderr).toMatch(/No migrations to apply/);
    expect((await counters(store)).every((x) => x === 1)).toBe(true);
  });

  it('--check reports pending work, --fake records without running', async () => {
    const { store, env: e } = await fresh();
    await seed(store, 50);
    const app = tempApp({ 'migrations/0001_add_colour.ts': ADD_COLOUR, 'migrations/0002_increment.ts': INCREMENT() });
    const before = await snapshot(store);
    const check = await runCli(['migrate', '--check'], { cwd: app, env: e });
    expect(check.code).toBe(1);
    expect(check.stdout).toMatch(/Pending: default:0001_add_colour, default:0002_increment/);

    const fake = await runCli(['migrate', '--fake', '0001'], { cwd: app, env: e });
    expect(fake.code).toBe(0);
    expect(await snapshot(store)).toEqual(before);
    const status = JSON.parse((await runCli(['status', '--json'], { cwd: app, env: e })).stdout);
    expect(status.map((s: { state: string }) => s.state)).toEqual(['faked', 'pending']);
    expect((await runCli(['migrate', '--check', '--json'], { cwd: app, env: e })).stdout).toContain('"pending":["default:0002_increment"]');

    expect((await runCli(['migrate'], { cwd: app, env: e })).code).toBe(0);
    expect((await runCli(['migrate', '--check'], { cwd: app, env: e })).code).toBe(0);
  });

  it('--dry-run writes nothing and reports counts with a sample', async () => {
    const { store, env: e } = await fresh();
    await seed(store, 80);
    const app = tempApp({ 'migrations/0001_add_colour.ts': ADD_COLOUR });
    const before = await snapshot(store);
    const dry = await runCli(['migrate', '--dry-run', '--json'], { cwd: app, env: e });
    expect(dry.code).toBe(0);
    const result = jsonEvents(dry).find((x) => x.event === 'dry-run')!.result as { scanned: number; changed: number; samples: { before: object; after: object }[] };
    expect(result.scanned).toBe(80);
    expect(result.changed).toBe(80);
    expect(result.samples.length).toBeGreaterThan(0);
    expect(result.samples[0].after).toMatchObject({ colour: 'blue' });
    expect(await snapshot(store)).toEqual(before);
    expect(JSON.parse((await runCli(['status', '--json'], { cwd: app, env: e })).stdout)[0].state).toBe('pending');
  });

  it('refuses a file edited after it was applied, unless --allow-changed', async () => {
    const { store, env: e } = await fresh();
    await seed(store, 20);
    const app = tempApp({ 'migrations/0001_add_colour.ts': ADD_COLOUR });
    expect((await runCli(['migrate'], { cwd: app, env: e })).code).toBe(0);
    appendFileSync(path.join(app, 'migrations/0001_add_colour.ts'), '\n// edited\n');
    const edited = await runCli(['migrate'], { cwd: app, env: e });
    expect(edited.code).toBe(2);
    expect(edited.stderr).toMatch(/0001_add_colour\.ts was changed after it was applied/);
    expect((await runCli(['migrate', '--allow-changed'], { cwd: app, env: e })).code).toBe(0);
  });

  it('refuses to unapply irreversible operations, and unapplies declared reverses with zero', async () => {
    const { store, env: e } = await fresh();
    await seed(store, 30);
    const app = tempApp({ 'migrations/0001_add_colour.ts': ADD_COLOUR, 'migrations/0002_increment.ts': INCREMENT() });
    expect((await runCli(['migrate', '0001'], { cwd: app, env: e })).code).toBe(0);
    const irreversible = await runCli(['migrate', '0001'], { cwd: app, env: { ...e } });
    expect(irreversible.code).toBe(0); // already there: nothing to do
    expect((await runCli(['migrate'], { cwd: app, env: e })).code).toBe(0);
    const back = await runCli(['migrate', '0001'], { cwd: app, env: e });
    expect(back.code).toBe(2);
    expect(back.stderr).toMatch(/Cannot unapply default:0002_increment .*irreversible/);

    // AddFieldData declares its reverse (RemoveFieldData of the field): `zero` unapplies it.
    const reversible = await fresh();
    await seed(reversible.store, 30);
    const addOnly = tempApp({ 'migrations/0001_add_colour.ts': ADD_COLOUR });
    expect((await runCli(['migrate'], { cwd: addOnly, env: reversible.env })).code).toBe(0);
    expect(Object.values(await snapshot(reversible.store)).every((p) => (p as { colour?: string }).colour === 'blue')).toBe(true);
    const zero = await runCli(['migrate', 'zero'], { cwd: addOnly, env: reversible.env });
    expect(zero.stderr).toMatch(/Backing out 1 migration/);
    expect(zero.code).toBe(0);
    expect(Object.values(await snapshot(reversible.store)).some((p) => 'colour' in (p as object))).toBe(false);
    expect(JSON.parse((await runCli(['status', '--json'], { cwd: addOnly, env: reversible.env })).stdout)[0].state).toBe('pending');
  });

  it('exits 2 naming the file for a loader error, before touching Datastore', async () => {
    const app = tempApp({ 'migrations/0001_broken.ts': 'export const notAMigration = 1;\n' });
    const result = await runCli(['migrate'], { cwd: app, env: { ...ctx.env(), DATASTORE_EMULATOR_HOST: '127.0.0.1:1' } });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/0001_broken\.ts has no default export made by defineMigration/);
  });
});
