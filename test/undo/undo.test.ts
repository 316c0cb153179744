import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Key, type Datastore } from '../../src/datastore';
import { pausing, runCli, tempApp, waitForPause, type CliResult } from '../support/cli';
import { describeEachFlavour, uniqueProject } from '../support/emulators';
import { images, migrationFile, rawSeed, rawSnapshot, richKeys, SEED } from './support';

const N = 40;
/** A killed run's lease lapses in 2 s, for the next run to take it. */
const SHORT_LEASE = JSON.stringify({ lockTtlSeconds: 2 });

const CASES: [string, string, string][] = [
  ['DeleteModelData', 'DeleteModelData', "new DeleteModelData('Rich', { undo: true })"],
  ['RemoveFieldData', 'RemoveFieldData', "new RemoveFieldData('Rich', 'nested', { undo: true })"],
  [
    'a MapFunctionOnEntities without a reverse',
    'MapFunctionOnEntities',
    "new MapFunctionOnEntities('Rich', (e) => { e.set('keep', 'mapped'); e.delete('big'); e.set('micros', new Date(0)); }, { undo: { retain: '14d' } })",
  ],
  ['a CopyModelData that overwrote', 'CopyModelData', "new CopyModelData('Rich', 'Target', { overwriteExisting: true, undo: true })"],
];

describeEachFlavour('undo from before-images', (ctx) => {
  async function fresh(): Promise<{ store: Datastore; env: NodeJS.ProcessEnv; projectId: string }> {
    const projectId = uniqueProject('undo');
    const store = await ctx.connect({ projectId });
    await rawSeed(ctx, projectId, richKeys('Rich', N));
    // Half the copy's targets exist already, with other values: an overwriting copy replaces them.
    await rawSeed(
      ctx,
      projectId,
      richKeys('Target', N).filter((_, i) => i % 2 === 0),
      { ...SEED, keep: { stringValue: 'the target as it was' } },
    );
    return { store, projectId, env: { ...ctx.env(), DATASTORE_PROJECT_ID: projectId, GOOGLE_CLOUD_PROJECT: projectId } };
  }
  const ok = (r: CliResult) => expect({ code: r.code, stderr: r.code === 0 ? '' : r.stderr }).toEqual({ code: 0, stderr: '' });

  it.each(CASES)('%s, applied then backed out, leaves every entity as it was, at the protobuf level', async (_, imports, operation) => {
    const { store, env, projectId } = await fresh();
    const app = tempApp({ 'migrations/0001_change.ts': migrationFile(imports, operation) });
    const before = await rawSnapshot(ctx, projectId, ['Rich', 'Target']);
    expect(Object.keys(before).length).toBe(N + N / 2);

    const dry = await runCli(['migrate', '--dry-run'], { cwd: app, env });
    expect(`${dry.stdout}${dry.stderr}`).toMatch(new RegExp(`Before-images \\(undo, kept \\d+d\\): ${N} more writes, [\\d,]+ bytes`));
    expect(await images(store)).toEqual([]);
    ok(await runCli(['migrate'], { cwd: app, env }));
    expect(await rawSnapshot(ctx, projectId, ['Rich', 'Target'])).not.toEqual(before);
    const kept = await images(store);
    expect(kept.length).toBe(N);
    expect(kept.every((i) => !i.restoredAt)).toBe(true);

    const plan = await runCli(['plan', 'zero'], { cwd: app, env });
    expect(plan.stdout).toMatch(/Restore what .* \(keeping before-images for \d+d: .*\)" changed, from its before-images/);
    expect(plan.stdout).not.toMatch(/IRREVERSIBLE|refuses/);

    ok(await runCli(['migrate', 'zero'], { cwd: app, env }));
    expect(await rawSnapshot(ctx, projectId, ['Rich', 'Target'])).toEqual(before);
    expect((await images(store)).every((i) => i.restoredAt)).toBe(true);
  });

  /** Runs the CLI until `batches` batches committed, then kills it (SIGKILL). */
  async function killedAfter(batches: number, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<void> {
    let kill: () => void = () => undefined;
    const pause = pausing(env, batches);
    const run = runCli([...args, '--concurrency', '1', '--wait-lock', '30'], { cwd, env: pause.env, onSpawn: (k) => (kill = k) });
    await waitForPause(pause.file, run);
    kill();
    expect((await run).signal).toBe('SIGKILL');
  }

  it('killed in the forward run and again in each back-out, then redone and backed out: every entity changed exactly once, then exactly as it was', async () => {
    const { env, projectId } = await fresh();
    const map = "new MapFunctionOnEntities('Rich', (e) => { e.set('n', Number(e.get('n') ?? 0) + 1); e.delete('nested'); }, { undo: true, batchSize: 4 })";
    const app = tempApp({ 'migrations/0001_change.ts': migrationFile('MapFunctionOnEntities', map), 'dsmigrate.config.json': SHORT_LEASE });
    const before = await rawSnapshot(ctx, projectId, ['Rich']);

    await killedAfter(3, ['migrate'], app, env);
    await killedAfter(1, ['migrate', 'zero'], app, env);
    ok(await runCli(['migrate', '--wait-lock', '30'], { cwd: app, env }));
    const applied = await rawSnapshot(ctx, projectId, ['Rich']);
    expect(Object.values(applied).map((p) => p.n)).toEqual(Array.from({ length: N }, () => ({ integerValue: '1' })));

    await killedAfter(2, ['migrate', 'zero'], app, env);
    ok(await runCli(['migrate', 'zero', '--wait-lock', '30'], { cwd: app, env }));
    expect(await rawSnapshot(ctx, projectId, ['Rich'])).toEqual(before);
  });

  it('a DeleteModelData killed midway backs out exactly what it deleted', async () => {
    const { env, projectId } = await fresh();
    const app = tempApp({ 'migrations/0001_change.ts': migrationFile('DeleteModelData', "new DeleteModelData('Rich', { undo: true, batchSize: 4 })"), 'dsmigrate.config.json': SHORT_LEASE });
    const before = await rawSnapshot(ctx, projectId, ['Rich']);
    await killedAfter(3, ['migrate'], app, env);
    expect(Object.keys(await rawSnapshot(ctx, projectId, ['Rich'])).length).toBeLessThan(N);
    ok(await runCli(['migrate', 'zero', '--wait-lock', '30'], { cwd: app, env }));
    expect(await rawSnapshot(ctx, projectId, ['Rich'])).toEqual(before);
  });

  it('an entity the application changed after the forward run: refused by default naming it, restored with overwrite, left with skip', async () => {
    const { store, env, projectId } = await fresh();
    const app = tempApp({ 'migrations/0001_change.ts': migrationFile('MapFunctionOnEntities', "new MapFunctionOnEntities('Rich', (e) => { e.set('keep', 'mapped'); }, { undo: true })") });
    const before = await rawSnapshot(ctx, projectId, ['Rich']);
    ok(await runCli(['migrate'], { cwd: app, env }));
    const touched = Key.of('Rich', 3);
    const entity = (await store.get(touched))!;
    entity.set('keep', 'the application wrote this');
    await store.save([entity]);
    const written = await rawSnapshot(ctx, projectId, ['Rich']);

    const refused = await runCli(['migrate', 'zero'], { cwd: app, env });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/1 entity was changed since it ran \(e\.g\. Rich:3\).*Nothing was changed.*--undo-conflicts overwrite/s);
    expect(await rawSnapshot(ctx, projectId, ['Rich'])).toEqual(written);

    const skipped = await runCli(['migrate', 'zero', '--undo-conflicts', 'skip'], { cwd: app, env });
    ok(skipped);
    const after = await rawSnapshot(ctx, projectId, ['Rich']);
    const name = Object.keys(after).find((k) => k.includes('["Rich","3"]'))!;
    expect(after[name]).toEqual(written[name]);
    expect({ ...after, [name]: undefined }).toEqual({ ...before, [name]: undefined });
  });

  it('--undo-conflicts overwrite restores an entity the application changed', async () => {
    const { store, env, projectId } = await fresh();
    const app = tempApp({ 'migrations/0001_change.ts': migrationFile('RemoveFieldData', "new RemoveFieldData('Rich', 'keep', { undo: true })") });
    const before = await rawSnapshot(ctx, projectId, ['Rich']);
    ok(await runCli(['migrate'], { cwd: app, env }));
    await store.delete([Key.of('Rich', 5)]);
    ok(await runCli(['migrate', 'zero', '--undo-conflicts', 'overwrite'], { cwd: app, env }));
    expect(await rawSnapshot(ctx, projectId, ['Rich'])).toEqual(before);
  });

  it('a back-out past the retention is refused with the date, changing nothing', async () => {
    const { env, projectId } = await fresh();
    const app = tempApp({ 'migrations/0001_change.ts': migrationFile('DeleteModelData', "new DeleteModelData('Rich', { undo: { retain: '1s' } })") });
    ok(await runCli(['migrate'], { cwd: app, env }));
    await new Promise((r) => setTimeout(r, 1500));
    const refused = await runCli(['migrate', 'zero'], { cwd: app, env });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/they expired on \d{4}-\d\d-\d\dT/);
    expect(await rawSnapshot(ctx, projectId, ['Rich'])).toEqual({});
  });

  it('undo status shows what each operation keeps; prune removes only expired images, and their back-out is then refused with the date', async () => {
    const { store, env, projectId } = await fresh();
    await rawSeed(ctx, projectId, richKeys('Old', N));
    const app = tempApp({
      'migrations/0001_old.ts': migrationFile('DeleteModelData', "new DeleteModelData('Old', { undo: { retain: '1s' } })"),
      'migrations/0002_rich.ts': migrationFile('DeleteModelData', "new DeleteModelData('Rich', { undo: { retain: '14d' } })"),
    });
    const rich = await rawSnapshot(ctx, projectId, ['Rich']);
    ok(await runCli(['migrate'], { cwd: app, env }));
    await new Promise((r) => setTimeout(r, 1500));

    const status = await runCli(['undo', 'status', '--json'], { cwd: app, env });
    ok(status);
    const { holdings } = JSON.parse(status.stdout) as { holdings: { operation: string; kept: number; until: string }[] };
    expect(holdings.map((h) => [h.operation, h.kept])).toEqual([
      ['default:0001_old#0', N],
      ['default:0002_rich#0', N],
    ]);
    expect(new Date(holdings[1].until).getTime()).toBeGreaterThan(Date.now() + 13 * 86_400_000);

    const dry = await runCli(['undo', 'prune', '--dry-run', '--json'], { cwd: app, env });
    expect(JSON.parse(dry.stdout)).toEqual({ expired: N, operations: ['default:0001_old#0'], dryRun: true });
    expect((await images(store)).length).toBe(2 * N);

    ok(await runCli(['undo', 'prune'], { cwd: app, env }));
    expect((await images(store)).map((i) => i.operation)).toEqual(Array.from({ length: N }, () => 'default:0002_rich#0'));

    ok(await runCli(['migrate', '0001'], { cwd: app, env }));
    expect(await rawSnapshot(ctx, projectId, ['Rich'])).toEqual(rich);
    const refused = await runCli(['migrate', 'zero'], { cwd: app, env });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/`dsmigrate undo prune` removed them on \d{4}-\d\d-\d\dT.*past their retention \(1s\).*Nothing was changed/s);
    expect(await rawSnapshot(ctx, projectId, ['Old'])).toEqual({});
  });

  it('a migrate that finishes a migration removes the images past their retention', async () => {
    const { store, env } = await fresh();
    const app = tempApp({ 'migrations/0001_change.ts': migrationFile('RemoveFieldData', "new RemoveFieldData('Rich', 'keep', { undo: { retain: '1s' } })") });
    ok(await runCli(['migrate'], { cwd: app, env }));
    expect((await images(store)).length).toBe(N);
    await new Promise((r) => setTimeout(r, 1500));
    writeFileSync(path.join(app, 'migrations', '0002_more.ts'), migrationFile('RemoveFieldData', "new RemoveFieldData('Rich', 'big', { undo: true })"));
    ok(await runCli(['migrate'], { cwd: app, env }));
    expect((await images(store)).map((i) => i.operation)).toEqual(Array.from({ length: N }, () => 'default:0002_more#0'));
  });

  it('verify on a migration backed out from its before-images checks every restored entity against its image', async () => {
    const { store, env } = await fresh();
    const app = tempApp({ 'migrations/0001_change.ts': migrationFile('MapFunctionOnEntities', "new MapFunctionOnEntities('Rich', (e) => { e.set('keep', 'mapped'); }, { undo: true })") });
    ok(await runCli(['migrate'], { cwd: app, env }));
    ok(await runCli(['migrate', 'zero'], { cwd: app, env }));
    const verified = await runCli(['verify', '0001'], { cwd: app, env });
    expect({ code: verified.code, stdout: verified.stdout }).toEqual({ code: 0, stdout: expect.stringMatching(new RegExp(`ok .*Restore what .* changed, from its before-images: ${N} entities`)) });

    const entity = (await store.get(Key.of('Rich', 2)))!;
    entity.set('keep', 'changed after the back-out');
    await store.save([entity]);
    await store.delete([Key.of('Rich', 4)]);
    const failed = await runCli(['verify', '0001'], { cwd: app, env });
    expect(failed.code).toBe(1);
    expect(failed.stdout).toMatch(/FAILED .*: 2 of 40 entities/);
    expect(failed.stdout).toMatch(/Rich:2 is not as its before-image/);
    expect(failed.stdout).toMatch(/Rich:4 is missing/);
  });

  it('undo in the project config keeps before-images for the operations it names, without changing any checksum; one turned on after the run is refused', async () => {
    const { store, env, projectId } = await fresh();
    const config = JSON.stringify({ undo: { operations: ['DeleteModelData'], retain: '3d' } });
    const app = tempApp({ 'migrations/0001_drop.ts': migrationFile('DeleteModelData', "new DeleteModelData('Rich')"), 'dsmigrate.config.json': config });
    const before = await rawSnapshot(ctx, projectId, ['Rich']);
    expect((await runCli(['plan'], { cwd: app, env })).stdout).toMatch(/Delete every Rich entity \(keeping before-images for 3d/);
    ok(await runCli(['migrate'], { cwd: app, env }));
    expect((await images(store)).length).toBe(N);
    ok(await runCli(['migrate', 'zero'], { cwd: app, env }));
    expect(await rawSnapshot(ctx, projectId, ['Rich'])).toEqual(before);

    // Applied without undo, backed out with it: no images to restore, so refused rather than restoring nothing.
    const later = tempApp({ 'migrations/0001_drop.ts': migrationFile('DeleteModelData', "new DeleteModelData('Rich')") });
    ok(await runCli(['migrate'], { cwd: later, env }));
    writeFileSync(path.join(later, 'dsmigrate.config.json'), config);
    const refused = await runCli(['migrate', 'zero'], { cwd: later, env });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/it kept none .*undo was turned on after it ran.*Nothing was changed/s);
    expect(await rawSnapshot(ctx, projectId, ['Rich'])).toEqual({});

    const bad = tempApp({
      'migrations/0001_drop.ts': migrationFile('DeleteModelData', "new DeleteModelData('Rich')"),
      'dsmigrate.config.json': JSON.stringify({ undo: { operations: ['DropTable'] } }),
    });
    const refusedConfig = await runCli(['plan'], { cwd: bad, env });
    expect(refusedConfig.code).toBe(2);
    expect(refusedConfig.stderr).toMatch(/undo in .*dsmigrate\.config\.json operations must list operation types among AddFieldData, .*not \["DropTable"\]/);
  });

  it('a CopyModelDataToNamespace that overwrote, backed out: both namespaces exactly as they were, the images kept with the source', async () => {
    const { store, env, projectId } = await fresh();
    await rawSeed(
      ctx,
      projectId,
      richKeys('Rich', N).filter((_, i) => i % 3 === 0),
      { ...SEED, keep: { stringValue: 'tenant-b as it was' } },
      'tenant-b',
    );
    const app = tempApp({ 'migrations/0001_copy.ts': migrationFile('CopyModelDataToNamespace', "new CopyModelDataToNamespace('Rich', 'tenant-b', { overwriteExisting: true, undo: true })") });
    const source = await rawSnapshot(ctx, projectId, ['Rich']);
    const target = await rawSnapshot(ctx, projectId, ['Rich'], 'tenant-b');
    ok(await runCli(['migrate'], { cwd: app, env }));
    expect(await rawSnapshot(ctx, projectId, ['Rich'], 'tenant-b')).toEqual(source);
    expect((await images(store)).map((i) => i.target.namespace)).toEqual(Array.from({ length: N }, () => 'tenant-b'));
    ok(await runCli(['migrate', 'zero'], { cwd: app, env }));
    expect(await rawSnapshot(ctx, projectId, ['Rich'], 'tenant-b')).toEqual(target);
    expect(await rawSnapshot(ctx, projectId, ['Rich'])).toEqual(source);
  });
});
