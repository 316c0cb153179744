import { useDatastoreProxy } from '../support/datastore-proxy';
import { jsonEvents, runCli, tempApp } from '../support/cli';
import { describeEachFlavour } from '../support/emulators';
import { DOOMED, EXPECTED_COUNTS, expectEveryFault, expectSevenExact, FAULTS, N, rawLookup, richKeys, seedRich, SEVEN_OPERATIONS } from './support';

/** The seven operations run by `dsmigrate migrate` from source, its store talking to the emulator through 5% faults of every kind. */
describeEachFlavour('the seven operations, locally, under Datastore faults', (ctx) => {
  const proxy = useDatastoreProxy(() => ctx.host, FAULTS);

  it('apply exactly once, record the migration applied, and keep every other property exact', async () => {
    const seeder = await ctx.connect();
    const keys = richKeys(N);
    await seedRich(seeder, keys, DOOMED);
    const before = await rawLookup(ctx.host, ctx.projectId, keys);
    const app = tempApp({ 'migrations/0001_seven.ts': SEVEN_OPERATIONS });
    const env = { ...ctx.env(), DATASTORE_EMULATOR_HOST: proxy().host };

    const run = await runCli(['migrate', '--json'], { cwd: app, env });
    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: '' });
    const done = jsonEvents<{ event: string; operation?: number; result?: { scanned: number; changed: number; deleted: number; failed: number } }>(run)
      .filter((e) => e.event === 'operation-done')
      .map((e) => [e.operation, e.result!.changed, e.result!.deleted, e.result!.failed]);
    expect(done).toEqual(EXPECTED_COUNTS);
    const status = await runCli(['status', '--json'], { cwd: app, env });
    expect(status.code).toBe(0);
    expect((JSON.parse(status.stdout) as { name: string; state: string }[]).map((r) => [r.name, r.state])).toEqual([['0001_seven', 'applied']]);

    await expectSevenExact(ctx.host, ctx.projectId, keys, before);
    expectEveryFault(proxy());
  });
});
