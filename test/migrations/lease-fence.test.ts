import { rmSync } from 'node:fs';
import type { Datastore } from '../../src/datastore';
import { pausing, pausingAt, runCli, tempApp, waitForPause } from '../support/cli';
import { describeEachFlavour, uniqueProject } from '../support/emulators';
import { countOf, incrementOp, migrationOf, personValues, seedPeople } from '../support/people';

const N = 300;

describeEachFlavour('a run that lost its lease at a step boundary', (ctx) => {
  async function fresh(): Promise<{ store: Datastore; env: NodeJS.ProcessEnv }> {
    const projectId = uniqueProject('fence');
    const store = await ctx.connect({ projectId });
    await seedPeople(store, N);
    return { store, env: { ...ctx.env(), DATASTORE_PROJECT_ID: projectId, GOOGLE_CLOUD_PROJECT: projectId } };
  }

  it("closes nothing of the new holder's job, and the new holder's run ends exact", async () => {
    const { store, env } = await fresh();
    // A short lease, so that the killed run's lock lapses while the back-out waits for it.
    const app = tempApp({ 'migrations/0001_a.ts': migrationOf(incrementOp('a')), 'dsmigrate.config.json': JSON.stringify({ lockTtlSeconds: 2 }) });

    // A forward run killed after a few batches leaves a forward job with committed ranges.
    const killedPause = pausing(env, 3);
    let kill = () => undefined as void;
    const killed = runCli(['migrate', '--concurrency', '1'], { cwd: app, env: killedPause.env, onSpawn: (k) => (kill = k) });
    await waitForPause(killedPause.file, killed);
    kill();
    await killed;

    // A back-out takes the lease once it lapses and stops where it would close that forward job.
    const backPause = pausingAt(env, 'step-start');
    const back = runCli(['migrate', 'zero', '--wait-lock', '20'], { cwd: app, env: backPause.env });
    await waitForPause(backPause.file, back);

    // The operator breaks its lease, and a forward run takes over, resuming the forward job.
    expect((await runCli(['unlock'], { cwd: app, env })).code).toBe(0);
    const forwardPause = pausing(env, 2);
    const forward = runCli(['migrate', '--wait-lock', '20', '--concurrency', '1'], { cwd: app, env: forwardPause.env });
    await waitForPause(forwardPause.file, forward);

    // The back-out goes on from its step boundary: its lease is gone, so it must close nothing.
    rmSync(backPause.file);
    const stopped = await back;
    expect(stopped.code).toBe(3);
    expect(stopped.stderr).toMatch(/migration lock was taken from this run/);

    rmSync(forwardPause.file);
    const finished = await forward;
    expect({ code: finished.code, stderr: finished.stderr }).toEqual({ code: 0, stderr: expect.not.stringMatching(/closed|JOB_CLOSED/) as string });
    const a = await personValues(store, 'a');
    expect(a).toHaveLength(N);
    expect(countOf(a, 1)).toBe(N);
    const status = JSON.parse((await runCli(['status', '--json', '--runs'], { cwd: app, env })).stdout) as { migrations: { state: string }[]; runs: { status: string; direction: string }[] };
    expect(status.migrations.map((m) => m.state)).toEqual(['applied']);
    expect(status.runs.map((r) => [r.status, r.direction])).toEqual([
      ['done', 'forward'],
      ['abandoned', 'reverse'],
      ['abandoned', 'forward'],
    ]);
  });
});
