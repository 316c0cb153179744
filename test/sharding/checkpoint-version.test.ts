import { rmSync } from 'node:fs';
import { CONTROL_KINDS } from '../../src/control';
import { Entity, Key, type Datastore } from '../../src/datastore';
import { runCli, pausing, tempApp, waitForPause } from '../support/cli';
import { startProxy } from '../support/datastore-proxy';
import { describeEachFlavour, uniqueProject } from '../support/emulators';

const N = 300;
const BATCH = 50;
const MIGRATION = `import { defineMigration, AddFieldData } from 'datastore-migrate';
export default defineMigration({ operations: [new AddFieldData('Person', 'colour', { default: 'blue', batchSize: ${BATCH}, shardCount: 1 })] });
`;

/**
 * A batch read with a property mask reads its shard's checkpoint in the same request, and trusts it as
 * the slice left it only while Datastore answers the version the slice's last commit wrote
 * (src/sharding/processor.ts). Anything else that writes the checkpoint between two batches (here: the
 * job closed by a fence) must be read again and obeyed.
 */
describeEachFlavour("a shard's checkpoint read beside its batch", (ctx) => {
  async function fresh(n: number): Promise<{ store: Datastore; env: NodeJS.ProcessEnv }> {
    const projectId = uniqueProject('ckptver');
    const store = await ctx.connect({ projectId });
    await store.save(Array.from({ length: n }, (_, i) => Entity.from(Key.of('Person', i + 1), { name: `n${i}` })));
    return { store, env: { ...ctx.env(), DATASTORE_PROJECT_ID: projectId, GOOGLE_CLOUD_PROJECT: projectId } };
  }
  const coloured = async (store: Datastore, n: number) => (await store.lookup(Array.from({ length: n }, (_, i) => Key.of('Person', i + 1)))).filter((e) => e?.has('colour')).length;

  it('is read whole again once another writer changed it: a job closed between two batches stops the run', async () => {
    const { store, env } = await fresh(N);
    const app = tempApp({ 'migrations/0001_colour.ts': MIGRATION });
    const pause = pausing(env, 2);
    const run = runCli(['migrate', '--concurrency', '1'], { cwd: app, env: pause.env });
    await waitForPause(pause.file, run);
    const done = await coloured(store, N);
    expect(done).toBeGreaterThan(0);
    expect(done).toBeLessThan(N);

    // As a fence closes a job: the checkpoint rewritten with closed set, everything else as it was.
    const checkpoints: Entity[] = [];
    for await (const batch of store.queryBatches({ kind: CONTROL_KINDS.shard })) checkpoints.push(...batch);
    expect(checkpoints).toHaveLength(1);
    await store.save([checkpoints[0].set('closed', true)]);

    rmSync(pause.file);
    const stopped = await run;
    expect({ code: stopped.code, stderr: stopped.stderr }).toEqual({ code: 3, stderr: expect.stringMatching(/closed/) as string });
    expect(await coloured(store, N)).toBe(done);
  });

  it('costs a batch one lookup beside its commit, where it cost two, and the run ends exact', async () => {
    const proxy = await startProxy(ctx.host);
    try {
      // Two runs, the second over twice the entities: what the second spends more is what its extra batches cost.
      const spent = [];
      for (const n of [N, 2 * N]) {
        const { store, env } = await fresh(n);
        const before = { ...proxy.counts().rpcs };
        const result = await runCli(['migrate', '--concurrency', '1'], { cwd: tempApp({ 'migrations/0001_colour.ts': MIGRATION }), env: { ...env, DATASTORE_EMULATOR_HOST: proxy.host } });
        expect(result.code).toBe(0);
        expect(await coloured(store, n)).toBe(n);
        const after = proxy.counts().rpcs;
        spent.push({ lookups: (after.Lookup ?? 0) - (before.Lookup ?? 0), commits: (after.Commit ?? 0) - (before.Commit ?? 0) });
      }
      const batches = spent[1].commits - spent[0].commits;
      expect(batches).toBeGreaterThan(4);
      // The classic emulator ignores property masks, so batches there read whole, in two parallel requests that hold the checkpoint too.
      expect(spent[1].lookups - spent[0].lookups).toBe(ctx.flavour === 'classic' ? 2 * batches : batches);
    } finally {
      await proxy.stop();
    }
  });
});
