import { runCli, tempApp, type CliResult } from '../support/cli';
import { describeEachFlavour, uniqueProject } from '../support/emulators';
import { migrationFile, rawSeed, richKeys } from './support';

const N = 30;

/** `plan` says which operations keep before-images and what they cost; `status` shows, per migration, the images kept and until when they restore. */
describeEachFlavour('status with undo data', (ctx) => {
  const ok = (r: CliResult) => expect({ code: r.code, stderr: r.code === 0 ? '' : r.stderr }).toEqual({ code: 0, stderr: '' });
  interface Row {
    name: string;
    undo?: { kept: number; restored: number; bytes: number; until?: string };
  }
  const rows = async (app: string, env: NodeJS.ProcessEnv): Promise<Row[]> => JSON.parse((await runCli(['status', '--json'], { cwd: app, env })).stdout) as Row[];

  it('plans the images an operation keeps and their cost, shows those each migration keeps, their bytes and until when, then the restored ones after a back-out; none for a migration without undo', async () => {
    const projectId = uniqueProject('undost');
    await rawSeed(ctx, projectId, richKeys('Rich', N));
    const env = { ...ctx.env(), DATASTORE_PROJECT_ID: projectId, GOOGLE_CLOUD_PROJECT: projectId };
    const app = tempApp({
      'migrations/0001_keep.ts': migrationFile('RemoveFieldData', "new RemoveFieldData('Rich', 'nested', { undo: { retain: '14d' } })"),
      'migrations/0002_plain.ts': migrationFile('AddFieldData', "new AddFieldData('Rich', 'plain', { default: 1 })"),
    });
    // Before it runs, plan says which operations keep images, and what they cost at most.
    const plan = await runCli(['plan'], { cwd: app, env });
    expect(plan.stdout).toMatch(new RegExp(`keeps before-images for 14d: (up to ${N} more writes|one more write) \\(one per entity it changes\\)`));
    const planned = JSON.parse((await runCli(['plan', '--json'], { cwd: app, env })).stdout) as { operations: { beforeImages?: { retain: string } }[] }[];
    expect(planned.map((m) => m.operations.map((o) => o.beforeImages?.retain))).toEqual([['14d'], [undefined]]);

    const started = Date.now();
    ok(await runCli(['migrate'], { cwd: app, env }));

    const [keep, plain] = await rows(app, env);
    expect(keep).toMatchObject({ name: '0001_keep', undo: { kept: N, restored: 0 } });
    expect(keep.undo!.bytes).toBeGreaterThan(0);
    const until = Date.parse(keep.undo!.until!);
    expect(until).toBeGreaterThanOrEqual(started + 14 * 86_400_000 - 60_000);
    expect(until).toBeLessThanOrEqual(Date.now() + 14 * 86_400_000);
    expect(plain.undo).toBeUndefined();
    const text = await runCli(['status'], { cwd: app, env });
    expect(text.stdout).toMatch(new RegExp(`Undo data[\\s\\S]*default\\s+0001_keep\\s+${N}\\s+0\\s`));

    ok(await runCli(['migrate', 'zero'], { cwd: app, env }));
    const [after] = await rows(app, env);
    expect(after).toMatchObject({ name: '0001_keep', undo: { kept: 0, restored: N } });
  });
});
