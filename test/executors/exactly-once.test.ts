import { spawn } from 'node:child_process';
import path from 'node:path';
import type { Datastore } from '../../src/datastore';
import { LocalExecutor } from '../../src/executors';
import { jobTotals } from '../../src/sharding';
import { MapFunctionOnEntities } from '../../src/operations';
import { jobKey, shardKey } from '../../src/control';
import { clearJobState, ensureLayout, RateLimiter, runShardSlice } from '../../src/sharding';
import { readKind, seedMixed } from '../operations/dataset';
import { describeEachFlavour } from '../support/emulators';
import { incrementEach } from './fixtures/increment';

const N = 600;

async function counters(store: Datastore, kind: string): Promise<number[]> {
  return (await readKind(store, kind)).map((e) => e.get('counter') as number);
}

/** Invariant 1: at-least-once execution, exactly-once effect. */
describeEachFlavour('exactly once in effect: a counter incremented by a map ends at +1', (ctx) => {
  let store: Datastore;
  beforeAll(async () => {
    store = await ctx.connect();
  });

  it('after a crash right after a committed batch, and a re-run', async () => {
    await seedMixed(store, 'Crash', { '': N });
    const executor = new LocalExecutor({ concurrency: 2 });
    let batches = 0;
    const crashing = executor.runOperation({
      store,
      job: { namespace: '', id: 'crash#1' },
      operation: incrementEach('Crash', { batchSize: 40 }),
      onProgress: () => {
        // Called after a batch's transaction committed: the process "dies" with the batch done.
        if (++batches === 3) throw new Error('simulated crash after a commit');
      },
    });
    await expect(crashing).rejects.toThrow('simulated crash after a commit');
    const halfway = (await jobTotals(store, { namespace: '', id: 'crash#1' }))!;
    expect(halfway.scanned).toBeGreaterThan(0);
    expect(halfway.scanned).toBeLessThan(N);

    const result = await executor.runOperation({ store, job: { namespace: '', id: 'crash#1' }, operation: incrementEach('Crash', { batchSize: 40 }) });
    expect(result).toMatchObject({ scanned: N, changed: N, shardsDone: result.shardsTotal });
    expect(await counters(store, 'Crash')).toEqual(Array(N).fill(1));
  });

  it('with two executors racing the same run', async () => {
    await seedMixed(store, 'Race', { '': N });
    const run = () => new LocalExecutor({ concurrency: 3 }).runOperation({ store, job: { namespace: '', id: 'race#1' }, operation: incrementEach('Race', { batchSize: 30 }) });
    const [a, b] = await Promise.all([run(), run()]);
    expect(a.scanned).toBe(N);
    expect(b.scanned).toBe(N);
    expect(await counters(store, 'Race')).toEqual(Array(N).fill(1));
  });

  it('with slices of one batch each, duplicated, as redelivered tasks would run them', async () => {
    // Fewer entities: every round makes two transactions contend for one checkpoint on purpose.
    const n = 200;
    await seedMixed(store, 'Redelivered', { '': n });
    const work = incrementEach('Redelivered', { batchSize: 25 });
    await ensureLayout({ store, job: { namespace: '', id: 'dup#1' }, type: work.type, kind: work.kind, operation: work.fingerprint(), namespaces: [''], filters: [], shardCount: 1 });
    const slice = () => runShardSlice({ store, work, job: { namespace: '', id: 'dup#1' }, index: 0, budgetMs: 0 });
    let slices = 0;
    for (let done = false; !done; slices++) {
      // The same slice delivered twice at once, then once more after both finished.
      const [first, second] = await Promise.all([slice(), slice()]);
      const third = await slice();
      done = first.done && second.done && third.done;
    }
    expect(slices).toBeGreaterThanOrEqual(4);
    expect(await counters(store, 'Redelivered')).toEqual(Array(n).fill(1));
  });

  it('when a late duplicate of a fresh shard runs after the shard finished and its job was cleared', async () => {
    // A Cloud Task delivered twice: one copy read no checkpoint, then stalled; the other finished the
    // shard, the migration finished and its job state was cleared. The late copy must not take the
    // missing checkpoint for a fresh shard.
    const n = 60;
    await seedMixed(store, 'Late', { '': n });
    const work = incrementEach('Late', { batchSize: 25 });
    const job = { namespace: '', id: 'late#1' };
    await ensureLayout({ store, job, type: work.type, kind: work.kind, operation: work.fingerprint(), namespaces: [''], filters: [], shardCount: 1 });
    let stalled!: () => void;
    const paused = new Promise<void>((resolve) => (stalled = resolve));
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    // Its limiter holds the late copy before its first transaction, until the test releases it.
    const limiter = new RateLimiter({ maxEntitiesPerSecond: 1, sleep: () => (stalled(), gate) });
    const late = runShardSlice({ store, work, job, index: 0, limiter, budgetMs: 0 });
    await paused;
    expect((await runShardSlice({ store, work, job, index: 0 })).done).toBe(true);
    await clearJobState(store, job);
    release();
    await expect(late).rejects.toMatchObject({ code: 'JOB_CLEARED', message: expect.stringContaining('was cleared') });
    expect(await counters(store, 'Late')).toEqual(Array(n).fill(1));
    // Nothing was written for the cleared job, not even its error.
    expect(await store.lookup([shardKey(job, 0), jobKey(job)])).toEqual([undefined, undefined]);
  });

  it('with a tiny slice budget, each slice resuming from the checkpoint', async () => {
    await seedMixed(store, 'Sliced', { '': N });
    const result = await new LocalExecutor({ concurrency: 2, sliceBudgetMs: 1 }).runOperation({ store, job: { namespace: '', id: 'sliced#1' }, operation: incrementEach('Sliced', { batchSize: 50 }) });
    expect(result.changed).toBe(N);
    expect(await counters(store, 'Sliced')).toEqual(Array(N).fill(1));
  });

  it('after the process is killed mid-run (SIGKILL) and the run is resumed', async () => {
    await seedMixed(store, 'Killed', { '': N });
    const child = spawn(path.join(__dirname, '../../node_modules/.bin/tsx'), [path.join(__dirname, 'fixtures/run-increment.ts'), 'Killed', 'kill#1'], { env: ctx.env() });
    let output = '';
    const exited = new Promise<string>((resolve) => {
      child.stdout.on('data', (d: Buffer) => {
        output += d.toString();
        const scanned = [...output.matchAll(/scanned (\d+)/g)].map((m) => Number(m[1]));
        if (scanned.some((n) => n >= N / 3)) child.kill('SIGKILL');
      });
      child.stderr.on('data', (d: Buffer) => (output += d.toString()));
      child.on('exit', (code, signal) => resolve(`${code} ${signal}`));
    });
    expect(await exited).toBe('null SIGKILL');
    expect(output).not.toContain('finished');
    const before = await counters(store, 'Killed');
    expect(before.filter((c) => c === 1).length).toBeGreaterThan(0);
    expect(before.filter((c) => c === 0).length).toBeGreaterThan(0);

    const result = await new LocalExecutor().runOperation({ store, job: { namespace: '', id: 'kill#1' }, operation: incrementEach('Killed', { batchSize: 50 }) });
    expect(result.changed).toBe(N);
    expect(await counters(store, 'Killed')).toEqual(Array(N).fill(1));
  });

  it('refuses to resume a run id with a different operation', async () => {
    const other = new MapFunctionOnEntities('Crash', (e) => void e.set('other', 1), { batchSize: 7 });
    await expect(new LocalExecutor().runOperation({ store, job: { namespace: '', id: 'crash#1' }, operation: other })).rejects.toMatchObject({ code: 'CONFLICT' });
  });
});
