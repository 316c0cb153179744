import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CONTROL_KINDS } from '../../src/control';
import type { Datastore } from '../../src/datastore';
import { describeEachFlavour, uniqueProject } from '../support/emulators';
import { pausing, runCli, tempApp, waitForPause } from '../support/cli';
import { countOf as count, incrementOp as increment, migrationOf as migration, personValues as values, seedPeople, throwingAtOp as throwingAt } from '../support/people';

const N = 300;
/** A migration after the one that fails: it must wait while the run stops at its target. */
const LATER = `
import { defineMigration, AddFieldData } from 'datastore-migrate';
export default defineMigration({ operations: [new AddFieldData('Person', 'later', { default: 1 })] });
`;

describeEachFlavour('recovery paths', (ctx) => {
  async function fresh(): Promise<{ store: Datastore; env: NodeJS.ProcessEnv }> {
    const projectId = uniqueProject('rec');
    const store = await ctx.connect({ projectId });
    await seedPeople(store, N);
    return { store, env: { ...ctx.env(), DATASTORE_PROJECT_ID: projectId, GOOGLE_CLOUD_PROJECT: projectId } };
  }
  const cli = (args: string[], cwd: string, env: NodeJS.ProcessEnv, onSpawn?: (kill: () => void) => void) => runCli(args, { cwd, env, onSpawn });

  it('backs out of a migration that failed in its first operation without reversing anything else', async () => {
    const { store, env } = await fresh();
    const alwaysThrows = `new MapFunctionOnEntities('Person', () => { throw new Error('broken'); }, { reverse: (p) => void p.set('reversedBroken', true) })`;
    const app = tempApp({ 'migrations/0001_a.ts': migration(increment('a')), 'migrations/0002_b.ts': migration(alwaysThrows, increment('b')) });
    const failed = await cli(['migrate'], app, env);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('broken');

    const back = await cli(['migrate', '0001', '--json'], app, env);
    expect(back.code).toBe(0);
    const a = await values(store, 'a');
    expect(a).toHaveLength(N);
    expect(count(a, 1)).toBe(N);
    expect(count(await values(store, 'b'), 0)).toBe(N);
    expect(count(await values(store, 'reversedBroken'), 0)).toBe(N);
    const status = JSON.parse((await cli(['status', '--json'], app, env)).stdout) as { name: string; state: string }[];
    expect(status.map((r) => [r.name, r.state])).toEqual([
      ['0001_a', 'applied'],
      ['0002_b', 'pending'],
    ]);
  });

  it('backs out of a migration that failed halfway through a later operation over exactly the committed ranges', async () => {
    const { store, env } = await fresh();
    const app = tempApp({ 'migrations/0001_ab.ts': migration(increment('a'), throwingAt('b', 'p151')) });
    expect((await cli(['migrate'], app, env)).code).toBe(1);
    const partial = await values(store, 'b');
    expect(count(partial, 1)).toBeGreaterThan(0);
    expect(count(partial, 0)).toBeGreaterThan(0);
    expect(count(await values(store, 'a'), 1)).toBe(N);

    const back = await cli(['migrate', 'zero'], app, env);
    expect(back.code).toBe(0);
    for (const field of ['a', 'b']) {
      const after = await values(store, field);
      expect(after).toHaveLength(N);
      expect(count(after, 0)).toBe(N);
    }
  });

  it('finishes a forward run after a back-out killed midway, and a back-out after a forward run killed midway, exactly', async () => {
    const { store, env } = await fresh();
    const app = tempApp({ 'migrations/0001_a.ts': migration(increment('a')), 'dsmigrate.config.json': JSON.stringify({ lockTtlSeconds: 2 }) });
    expect((await cli(['migrate'], app, env)).code).toBe(0);

    // Back out, and kill it after 4 of its batches.
    let kill: () => void = () => undefined;
    const pause = pausing(env, 4);
    const reverse = cli(['migrate', 'zero', '--concurrency', '1'], app, pause.env, (k) => (kill = k));
    await waitForPause(pause.file, reverse);
    kill();
    expect((await reverse).signal).toBe('SIGKILL');
    const half = await values(store, 'a');
    expect(count(half, 0)).toBeGreaterThan(0);
    expect(count(half, 1)).toBeGreaterThan(0);

    const forward = await cli(['migrate', '--wait-lock', '30'], app, env);
    expect(forward.code).toBe(0);
    const a = await values(store, 'a');
    expect(a).toHaveLength(N);
    expect(count(a, 1)).toBe(N);

    // And the other way round: a back-out after a forward run killed midway.
    const app2 = tempApp({ 'migrations/0001_a.ts': migration(increment('a')), 'migrations/0002_c.ts': migration(increment('c')), 'dsmigrate.config.json': JSON.stringify({ lockTtlSeconds: 2 }) });
    const pause2 = pausing(env, 3);
    const partly = cli(['migrate', '--concurrency', '1'], app2, pause2.env, (k) => (kill = k));
    await waitForPause(pause2.file, partly);
    kill();
    await partly;
    const c = await values(store, 'c');
    expect(count(c, 1)).toBeGreaterThan(0);
    expect(count(c, 0)).toBeGreaterThan(0);
    expect((await cli(['migrate', '0001', '--wait-lock', '30'], app2, env)).code).toBe(0);
    const after = await values(store, 'c');
    expect(after).toHaveLength(N);
    expect(count(after, 0)).toBe(N);
    expect(count(await values(store, 'a'), 1)).toBe(N);
  });

  it('reverses once when two operators back out to the same target with --wait-lock', async () => {
    const { store, env } = await fresh();
    const app = tempApp({ 'migrations/0001_a.ts': migration(increment('a')) });
    expect((await cli(['migrate'], app, env)).code).toBe(0);
    const [one, two] = await Promise.all([cli(['migrate', 'zero', '--wait-lock', '60'], app, env), cli(['migrate', 'zero', '--wait-lock', '60'], app, env)]);
    expect([one.code, two.code]).toEqual([0, 0]);
    const a = await values(store, 'a');
    expect(a).toHaveLength(N);
    expect(count(a, 0)).toBe(N);
  });

  it('stops a run whose lease is broken by unlock, without recording it applied; the next run finishes it exactly', async () => {
    const { store, env } = await fresh();
    const app = tempApp({ 'migrations/0001_a.ts': migration(increment('a')), 'dsmigrate.config.json': JSON.stringify({ lockTtlSeconds: 3 }) });
    const pause = pausing(env, 2);
    const run = cli(['migrate', '--concurrency', '1'], app, pause.env);
    await waitForPause(pause.file, run);
    const unlock = await cli(['unlock', '--json'], app, env);
    expect(unlock.code).toBe(0);
    expect(JSON.parse(unlock.stdout).unlocked.owner).toBeTruthy();
    rmSync(pause.file);
    const stopped = await run;
    expect(stopped.code).toBe(3);
    expect(stopped.stderr).toMatch(/lock was taken from this run/);
    const status = JSON.parse((await cli(['status', '--json'], app, env)).stdout) as { state: string }[];
    expect(status[0].state).toBe('running');

    expect((await cli(['migrate'], app, env)).code).toBe(0);
    const a = await values(store, 'a');
    expect(a).toHaveLength(N);
    expect(count(a, 1)).toBe(N);
  });

  it('keeps two control namespaces apart over the same files and different data namespaces', async () => {
    const { store, env } = await fresh();
    await Promise.all([seedPeople(store, N, 'ta'), seedPeople(store, N, 'tb')]);
    const tenantIncrement = increment('a', "{ batchSize: 25, namespace: process.env.TENANT ?? '' }");
    const app = tempApp({ 'migrations/0001_a.ts': migration(tenantIncrement) });
    const [ra, rb] = await Promise.all([
      cli(['migrate', '--control-namespace', 'ctl-a'], app, { ...env, TENANT: 'ta' }),
      cli(['migrate', '--control-namespace', 'ctl-b'], app, { ...env, TENANT: 'tb' }),
    ]);
    expect([ra.code, rb.code]).toEqual([0, 0]);
    expect(count(await values(store, 'a', 'ta'), 1)).toBe(N);
    expect(count(await values(store, 'a', 'tb'), 1)).toBe(N);

    expect((await cli(['migrate', 'zero', '--control-namespace', 'ctl-a'], app, { ...env, TENANT: 'ta' })).code).toBe(0);
    expect(count(await values(store, 'a', 'ta'), 0)).toBe(N);
    const b = await values(store, 'a', 'tb');
    expect(b).toHaveLength(N);
    expect(count(b, 1)).toBe(N);
    const statusB = JSON.parse((await cli(['status', '--json', '--control-namespace', 'ctl-b'], app, { ...env, TENANT: 'tb' })).stdout) as { state: string }[];
    expect(statusB[0].state).toBe('applied');
    // No control state outside the control namespaces.
    for (const kind of Object.values(CONTROL_KINDS)) {
      for (const namespace of ['', 'ta', 'tb']) {
        for await (const keys of store.keys({ kind, namespace })) expect(keys.map(String)).toEqual([]);
      }
    }
  });

  it('names the target of a failed run in the advice of its error and of status, so that following it stops where the run would have', async () => {
    const { store, env } = await fresh();
    const app = tempApp({ 'migrations/0001_a.ts': migration(throwingAt('a', 'p151')), 'migrations/0002_b.ts': LATER });
    const failed = await cli(['migrate', '0001_a'], app, env);
    expect(failed.code).toBe(1);
    for (const advice of [failed.stderr, (await cli(['status'], app, env)).stdout]) {
      expect(advice).toContain('run `dsmigrate migrate default:0001_a` again');
      expect(advice).toContain('`dsmigrate migrate default:0001_a --allow-changed` resumes with the fixed file');
      expect(advice).toContain('`dsmigrate migrate --restart default:0001_a default:0001_a`');
    }
    // The file fixed, the advice followed as printed: 0001 applied, 0002 still waits.
    writeFileSync(path.join(app, 'migrations/0001_a.ts'), migration(throwingAt('a', 'nobody')));
    expect((await cli(['migrate', 'default:0001_a', '--allow-changed'], app, env)).code).toBe(0);
    expect(count(await values(store, 'a'), 1)).toBe(N);
    expect(count(await values(store, 'later'), 1)).toBe(0);
    const status = JSON.parse((await cli(['status', '--json'], app, env)).stdout) as { state: string }[];
    expect(status.map((s) => s.state)).toEqual(['applied', 'pending']);
  });

  it('restarts a failed migration whose file was fixed, up to the target given after it', async () => {
    const { store, env } = await fresh();
    const broken = migration(throwingAt('a', 'p151'));
    const app = tempApp({ 'migrations/0001_a.ts': broken, 'migrations/0002_b.ts': LATER });
    expect((await cli(['migrate'], app, env)).code).toBe(1);
    const fixed = `
import { defineMigration, MapFunctionOnEntities } from 'datastore-migrate';
export default defineMigration({ operations: [new MapFunctionOnEntities('Person', (p) => void p.set('fixed', true), { batchSize: 25 })] });
`;
    writeFileSync(path.join(app, 'migrations/0001_a.ts'), fixed);
    const refused = await cli(['migrate'], app, env);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('--restart default:0001_a');

    // The form the README gives, --restart <migration> [target]: the target stays a target, so 0002 waits.
    const restarted = await cli(['migrate', '--restart', '0001_a', '0001_a', '--json'], app, env);
    expect(restarted.code).toBe(0);
    const fixedValues = await values(store, 'fixed');
    expect(fixedValues).toHaveLength(N);
    expect(count(fixedValues, 1)).toBe(N);
    expect(count(await values(store, 'later'), 1)).toBe(0);
    const status = JSON.parse((await cli(['status', '--json'], app, env)).stdout) as { state: string }[];
    expect(status.map((s) => s.state)).toEqual(['applied', 'pending']);
  });
});
