import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Key, type Datastore } from '../../src/datastore';
import { runCli, tempApp } from '../support/cli';
import { describeEachFlavour, uniqueProject } from '../support/emulators';
import { countOf, personValues, seedPeople } from '../support/people';

/**
 * A RunFunction step (src/operations/run-function.ts) through the CLI from source: it runs once, is run
 * again after a SIGKILL before its step completed (its marker keeps its effect single), backs out
 * through its reverse, and is refused going back when it has none.
 */
const N = 60;

/** A migration whose function creates Settings:main once (its own marker: the entity itself) and counts its calls in FnCalls:seed. */
const seedMigration = (reverse: string) => `
import { writeFileSync } from 'node:fs';
import { defineMigration, Entity, Key, MapFunctionOnEntities, RunFunction } from 'datastore-migrate';

const settings = Key.of('Settings', 'main');
const calls = Key.of('FnCalls', 'seed');

export default defineMigration({
  operations: [
    new RunFunction(
      async function seedSettings({ store, dryRun, log, migration }) {
        if (dryRun) {
          log('would create Settings main');
          return (await store.get(settings)) ? 0 : 1;
        }
        await store.transaction(async (tx) => {
          const seen = await tx.get(calls);
          tx.upsert(Entity.from(calls, { n: Number(seen?.get('n') ?? 0) + 1, migration }));
        });
        const created = await store.transaction(async (tx) => {
          if (await tx.get(settings)) return 0;
          tx.insert(Entity.from(settings, { theme: 'dark' }));
          return 1;
        });
        log(created ? 'created Settings main' : 'Settings main was there already');
        const hang = process.env.DSM_TEST_HANG_IN_FUNCTION;
        if (hang) {
          writeFileSync(hang, 'started');
          await new Promise(() => setInterval(() => undefined, 1000));
        }
        return created;
      },
      { description: 'Create the default Settings'${reverse} },
    ),
    new MapFunctionOnEntities('Person', (p) => void p.set('a', Number(p.get('a') ?? 0) + 1), {
      reverse: (p) => void p.set('a', Number(p.get('a') ?? 0) - 1),
      batchSize: 25,
    }),
  ],
});
`;
const WITH_REVERSE = `, reverse: async ({ store }) => { await store.delete([settings]); }`;

describeEachFlavour('RunFunction', (ctx) => {
  async function fresh(files: Record<string, string>): Promise<{ store: Datastore; env: NodeJS.ProcessEnv; app: string }> {
    const projectId = uniqueProject('fn');
    const store = await ctx.connect({ projectId });
    await seedPeople(store, N);
    const app = tempApp({ ...files, 'dsmigrate.config.json': JSON.stringify({ lockTtlSeconds: 2 }) });
    return { store, env: { ...ctx.env(), DATASTORE_PROJECT_ID: projectId, GOOGLE_CLOUD_PROJECT: projectId }, app };
  }
  const cli = (args: string[], app: string, env: NodeJS.ProcessEnv, onSpawn?: (kill: () => void) => void) => runCli(args, { cwd: app, env, onSpawn });
  const calls = async (store: Datastore): Promise<number> => Number((await store.get(Key.of('FnCalls', 'seed')))?.get('n') ?? 0);
  const settings = (store: Datastore) => store.get(Key.of('Settings', 'main'));

  it('runs once, with its count and log lines in the report; --dry-run calls it with dryRun and writes nothing', async () => {
    const { store, env, app } = await fresh({ 'migrations/0001_seed.ts': seedMigration(WITH_REVERSE) });
    const plan = await cli(['plan'], app, env);
    expect(plan.code).toBe(0);
    expect(plan.stdout).toContain('Create the default Settings');

    const dry = await cli(['migrate', '--dry-run'], app, env);
    expect(dry.code).toBe(0);
    expect(dry.stderr).toContain('would create Settings main');
    expect(dry.stderr).toMatch(/\[dry run\] default:0001_seed operation 1: Create the default Settings: 0 scanned, 1 would change/);
    expect(await settings(store)).toBeUndefined();
    expect(await calls(store)).toBe(0);

    const run = await cli(['migrate', '--json'], app, env);
    expect(run.code).toBe(0);
    const done = run.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { event?: string; operation?: number; result?: { changed: number }; message?: string })
      .filter((e) => e.event === 'operation-done' || e.event === 'log');
    expect(done).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ event: 'log', operation: 0, message: 'created Settings main' }),
        expect.objectContaining({ event: 'operation-done', operation: 0, result: expect.objectContaining({ changed: 1 }) }),
      ]),
    );
    expect((await settings(store))?.get('theme')).toBe('dark');
    expect(await calls(store)).toBe(1);
    expect(countOf(await personValues(store, 'a'), 1)).toBe(N);

    // Applied: running again runs nothing.
    expect((await cli(['migrate'], app, env)).code).toBe(0);
    expect(await calls(store)).toBe(1);
  });

  it('runs again after a SIGKILL before its step completed, and its marker keeps the effect single; a back-out after such a kill runs the reverse', async () => {
    const hangFile = path.join(mkdtempSync(path.join(tmpdir(), 'dsm-fn-')), 'started');
    const { store, env, app } = await fresh({ 'migrations/0001_seed.ts': seedMigration(WITH_REVERSE) });
    let kill: () => void = () => undefined;
    const first = cli(['migrate'], app, { ...env, DSM_TEST_HANG_IN_FUNCTION: hangFile }, (k) => (kill = k));
    while (!existsSync(hangFile)) await sleep(50);
    kill();
    expect((await first).signal).toBe('SIGKILL');
    expect(await calls(store)).toBe(1);
    const status = JSON.parse((await cli(['status', '--json'], app, env)).stdout) as { name: string; state: string }[];
    expect(status.map((r) => [r.name, r.state])).toEqual([['0001_seed', 'running']]);

    const resumed = await cli(['migrate', '--wait-lock', '30'], app, env);
    expect(resumed.code).toBe(0);
    expect(resumed.stderr).toContain('Settings main was there already');
    expect(await calls(store)).toBe(2);
    expect((await settings(store))?.get('theme')).toBe('dark');
    expect(countOf(await personValues(store, 'a'), 1)).toBe(N);

    // Killed again before its step completed, then backed out: the function started, so its reverse runs.
    const again = await fresh({ 'migrations/0001_seed.ts': seedMigration(WITH_REVERSE) });
    const killed = cli(['migrate'], again.app, { ...again.env, DSM_TEST_HANG_IN_FUNCTION: `${hangFile}-2` }, (k) => (kill = k));
    while (!existsSync(`${hangFile}-2`)) await sleep(50);
    kill();
    await killed;
    expect(await settings(again.store)).toBeDefined();
    const back = await cli(['migrate', 'zero', '--wait-lock', '30'], again.app, again.env);
    expect(back.code).toBe(0);
    expect(await settings(again.store)).toBeUndefined();
    expect(countOf(await personValues(again.store, 'a'), 0)).toBe(N);
  });

  it('backs out through its reverse; without one the back-out is refused naming it, and reverse: noop leaves its effect', async () => {
    const { store, env, app } = await fresh({ 'migrations/0001_seed.ts': seedMigration(WITH_REVERSE) });
    expect((await cli(['migrate'], app, env)).code).toBe(0);
    const back = await cli(['migrate', 'zero'], app, env);
    expect(back.code).toBe(0);
    expect(await settings(store)).toBeUndefined();
    expect(countOf(await personValues(store, 'a'), 0)).toBe(N);
    expect(JSON.parse((await cli(['status', '--json'], app, env)).stdout)).toEqual([expect.objectContaining({ name: '0001_seed', state: 'pending' })]);

    const irreversible = await fresh({ 'migrations/0001_seed.ts': seedMigration('') });
    expect((await cli(['migrate'], irreversible.app, irreversible.env)).code).toBe(0);
    const plan = await cli(['plan', 'zero'], irreversible.app, irreversible.env);
    expect(plan.stdout).toContain('Create the default Settings: IRREVERSIBLE');
    const refused = await cli(['migrate', 'zero'], irreversible.app, irreversible.env);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/Cannot unapply default:0001_seed .*Create the default Settings is irreversible/);
    expect((await settings(irreversible.store))?.get('theme')).toBe('dark');
    expect(countOf(await personValues(irreversible.store, 'a'), 1)).toBe(N);

    const noop = await fresh({ 'migrations/0001_seed.ts': seedMigration(`, reverse: 'noop'`) });
    expect((await cli(['migrate'], noop.app, noop.env)).code).toBe(0);
    expect((await cli(['migrate', 'zero'], noop.app, noop.env)).code).toBe(0);
    expect((await settings(noop.store))?.get('theme')).toBe('dark');
    expect(countOf(await personValues(noop.store, 'a'), 0)).toBe(N);
  });

  it('refuses a RunFunction made wrongly, naming what to give, before anything runs', async () => {
    const bad = `import { defineMigration, RunFunction } from 'datastore-migrate';\nexport default defineMigration({ operations: [new RunFunction('seed' as never)] });\n`;
    const { env, app } = await fresh({ 'migrations/0001_bad.ts': bad });
    const run = await cli(['migrate'], app, env);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/RunFunction .*needs a function \(context\) => \.\.\., not string/);

    const badCount = `import { defineMigration, RunFunction } from 'datastore-migrate';\nexport default defineMigration({ operations: [new RunFunction(() => 'many' as never)] });\n`;
    const second = await fresh({ 'migrations/0001_count.ts': badCount });
    const failed = await cli(['migrate'], second.app, second.env);
    expect(failed.code).toBe(2);
    expect(failed.stderr).toMatch(/returned "many": return nothing, or how many things it changed/);
  });
});
