import { Entity, Key } from '../../src/datastore';
import { runCli, tempApp, type CliResult } from '../support/cli';
import { describeEachFlavour, uniqueProject } from '../support/emulators';
import { migrationFile, rawSeed, rawSnapshot, richKeys } from './support';

const N = 50;

/** The commands a piece of advice prints, as arguments to the CLI. */
const commandsIn = (advice: string): string[][] => [...advice.matchAll(/`dsmigrate ([^`]+)`/g)].map((m) => m[1].split(' '));

/**
 * A back-out refused for an entity the application wrote again: the error and `status` name the back-out's
 * target in every command they print. Without it, the `migrate --undo-conflicts …` a user ran applied the
 * migration again instead of finishing the back-out.
 */
describeEachFlavour('advice after a failed back-out', (ctx) => {
  const ok = (r: CliResult) => expect({ code: r.code, stderr: r.code === 0 ? '' : r.stderr }).toEqual({ code: 0, stderr: '' });

  it('names the target; followed as printed, it finishes the back-out and leaves the data exactly as before the migration', async () => {
    const projectId = uniqueProject('undoadv');
    const store = await ctx.connect({ projectId });
    await rawSeed(ctx, projectId, richKeys('LegacyLog', N));
    const env = { ...ctx.env(), DATASTORE_PROJECT_ID: projectId, GOOGLE_CLOUD_PROJECT: projectId };
    const app = tempApp({
      'migrations/0001_mark.ts': migrationFile('AddFieldData', "new AddFieldData('LegacyLog', 'marked', { default: 1 })"),
      'migrations/0002_drop.ts': migrationFile('DeleteModelData', "new DeleteModelData('LegacyLog', { undo: true })"),
    });
    ok(await runCli(['migrate', '0001'], { cwd: app, env }));
    const before = await rawSnapshot(ctx, projectId, ['LegacyLog']);
    ok(await runCli(['migrate'], { cwd: app, env }));
    await store.save([Entity.from(Key.of('LegacyLog', 3), { note: 'saved again by the application' })]);

    const refused = await runCli(['migrate', '0001'], { cwd: app, env });
    expect(refused.code).toBe(1);
    const advice = refused.stderr.trim().split('\n').at(-1)!;
    const commands = commandsIn(advice);
    expect(commands).toEqual([
      ['migrate', 'default:0001_mark', '--undo-conflicts', 'overwrite'],
      ['migrate', 'default:0001_mark', '--undo-conflicts', 'skip'],
    ]);
    const status = await runCli(['status'], { cwd: app, env });
    expect(status.stdout).toContain(`default:0002_drop failed: `);
    expect(status.stdout).toContain(advice);
    expect(status.stdout).not.toMatch(/--restart|--allow-changed/);

    ok(await runCli(commands[0], { cwd: app, env }));
    expect(await rawSnapshot(ctx, projectId, ['LegacyLog'])).toEqual(before);
    const rows = JSON.parse((await runCli(['status', '--json'], { cwd: app, env })).stdout) as { name: string; state: string }[];
    expect(rows.map((r) => [r.name, r.state])).toEqual([
      ['0001_mark', 'applied'],
      ['0002_drop', 'pending'],
    ]);
  });
});
