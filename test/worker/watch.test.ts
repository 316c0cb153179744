import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Datastore } from '../../src/datastore';
import { recentRuns } from '../../src/migrations';
import { startWorker, type RunningWorker } from '../../src/worker';
import { pausing, pausingAt, runCli, tempApp, waitForPause, type CliResult } from '../support/cli';
import { describeEachFlavour, uniqueProject } from '../support/emulators';
import { counterValues, FAST_QUEUE, graphOf, INCREMENT_MIGRATION, inProcessWorker, SECRET, seedCounters, startTasks, TAG_MIGRATION, type TasksHarness } from './support/harness';

const N = 400;
const SLOW_INCREMENT = INCREMENT_MIGRATION('{ shardCount: 3, batchSize: 20 }', 8);

type Event = { event: string; [k: string]: unknown };
const events = (r: CliResult): Event[] =>
  r.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Event);

/** The id of the run under way in the control namespace, once one is stored. */
async function runUnderWay(store: Datastore): Promise<string> {
  for (const until = Date.now() + 30_000; Date.now() < until; await sleep(50)) {
    const running = (await recentRuns(store, '')).find((r) => r.status === 'running');
    if (running) return running.id;
  }
  throw new Error('no run started within 30 s');
}

/** `dsmigrate status --watch --json` from another process: what it saw each step count, and its summary. */
function stepCounts(watched: CliResult): Record<string, unknown>[] {
  return events(watched)
    .filter((e) => e.event === 'operation-done')
    .map((e) => e.result as Record<string, unknown>);
}

/** `migrate --executor cloud-tasks --no-wait`: the id of the run it dispatched (it may be over by the time a watcher starts). */
async function dispatch(cwd: string, env: NodeJS.ProcessEnv, target?: string): Promise<string> {
  const dispatched = await runCli(['migrate', ...(target ? [target] : []), '--executor', 'cloud-tasks', '--no-wait', '--json'], { cwd, env });
  expect({ code: dispatched.code, stderr: dispatched.stderr }).toEqual({ code: 0, stderr: '' });
  return String(events(dispatched).find((e) => e.event === 'dispatched')!.run);
}

describeEachFlavour('a run watched from another process with `dsmigrate status --watch`', (ctx) => {
  /** A project of each test's own: its migrations' records must not meet another test's. */
  const isolated = async (): Promise<{ store: Datastore; env: NodeJS.ProcessEnv }> => {
    const projectId = uniqueProject('watch');
    const store = await ctx.connect({ projectId });
    return { store, env: { ...ctx.env(), DATASTORE_PROJECT_ID: projectId, GOOGLE_CLOUD_PROJECT: projectId } };
  };
  let h: TasksHarness;
  const workers: RunningWorker[] = [];
  beforeAll(async () => {
    h = await startTasks();
  });
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await h.close();
  });

  test('a local run: the watcher attaches mid-run, shows its progress, and ends with the counts the data has', async () => {
    const { store, env } = await isolated();
    await seedCounters(store, N);
    const app = tempApp({ 'migrations/0001_increment.ts': SLOW_INCREMENT });
    const running = runCli(['migrate', '--concurrency', '1'], { cwd: app, env });
    await runUnderWay(store);
    const watched = await runCli(['status', '--watch', '--json'], { cwd: app, env });
    const ran = await running;
    expect({ code: ran.code, stderr: ran.stderr }).toEqual({ code: 0, stderr: expect.any(String) as string });
    expect(watched.code).toBe(0);
    expect(events(watched).map((e) => e.event)).toEqual(expect.arrayContaining(['migration-start', 'operation-start', 'operation-done', 'migration-done', 'summary']));
    expect(stepCounts(watched)).toEqual([expect.objectContaining({ scanned: N, changed: N })]);
    expect(events(watched).at(-1)).toMatchObject({ event: 'summary', applied: ['default:0001_increment'] });
    const values = await counterValues(store);
    expect(values.filter((v) => v === 1)).toHaveLength(N);
  });

  test('Ctrl-C detaches the watcher, the run goes on, and attaching again as the message says follows it to its end', async () => {
    const { store, env } = await isolated();
    await seedCounters(store, N);
    const app = tempApp({ 'migrations/0001_increment.ts': SLOW_INCREMENT });
    // The run holds after two batches, so that it is still under way whenever the watcher detaches.
    const paused = pausing(env, 2);
    const running = runCli(['migrate', '--concurrency', '1'], { cwd: app, env: paused.env });
    await waitForPause(paused.file, running);
    let interrupt = (): void => undefined;
    let attached = (): void => undefined;
    const sawEvent = new Promise<void>((resolve) => (attached = resolve));
    const watching = runCli(['status', '--watch', '--json'], { cwd: app, env, signal: 'SIGINT', onSpawn: (kill) => (interrupt = kill), onLine: () => attached() });
    await sawEvent;
    interrupt();
    const detached = await watching;
    expect(detached.code).toBe(0);
    const said = events(detached).find((e) => e.event === 'detached');
    expect(said).toMatchObject({ run: expect.stringMatching(/^run-/) as string, attach: 'dsmigrate status --watch' });
    rmSync(paused.file);
    const again = await runCli([...String(said!.attach).split(' ').slice(1), '--json'], { cwd: app, env });
    expect(again.code).toBe(0);
    expect(events(again).at(-1)).toMatchObject({ event: 'summary', run: said!.run, applied: ['default:0001_increment'] });
    expect((await running).code).toBe(0);
    expect((await counterValues(store)).filter((v) => v === 1)).toHaveLength(N);
  });

  test('every shard done and the step not yet recorded complete: status says what it waits on, with no time left', async () => {
    const { store, env } = await isolated();
    await seedCounters(store, 40);
    const app = tempApp({ 'migrations/0001_increment.ts': INCREMENT_MIGRATION() });
    // Held just before it records the step complete: every shard's checkpoint says done, and the run is still on its step.
    const paused = pausingAt(env, 'step-complete');
    const running = runCli(['migrate'], { cwd: app, env: paused.env });
    await waitForPause(paused.file, running);
    const shown = await runCli(['status'], { cwd: app, env });
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/scanned 40\b.*shards 3\/3/);
    expect(shown.stdout).toMatch(/ {2}waiting: every shard is done: the step is recorded complete by the run's process \(/);
    expect(shown.stdout).not.toMatch(/ s left/);
    const json = await runCli(['status', '--json', '--runs'], { cwd: app, env });
    const current = (JSON.parse(json.stdout) as { current: Record<string, unknown> }).current;
    expect(current).toMatchObject({ closing: expect.stringMatching(/^every shard is done/) as string, counts: expect.objectContaining({ scanned: 40, shardsDone: 3, shardsTotal: 3 }) });
    expect(current).not.toHaveProperty('etaSeconds');
    // A watcher attached now tells the same, once, and then the step's end when the run goes on.
    let sawClosing = (): void => undefined;
    const closing = new Promise<void>((resolve) => (sawClosing = resolve));
    const watching = runCli(['status', '--watch', '--json'], { cwd: app, env, onLine: (line) => line.includes('"event":"closing"') && sawClosing() });
    await closing;
    rmSync(paused.file);
    expect((await running).code).toBe(0);
    const watched = await watching;
    expect(watched.code).toBe(0);
    expect(events(watched).filter((e) => e.event === 'closing')).toEqual([
      expect.objectContaining({ migration: 'default:0001_increment', operation: 0, reason: expect.stringMatching(/^every shard is done/) as string }),
    ]);
    expect(
      events(watched)
        .map((e) => e.event)
        .slice(-3),
    ).toEqual(['operation-done', 'migration-done', 'summary']);
    const after = await runCli(['status', '--json', '--runs'], { cwd: app, env });
    expect(JSON.parse(after.stdout)).toMatchObject({ current: null });
    expect((await counterValues(store)).filter((v) => v === 1)).toHaveLength(40);
  });

  test("a migration recovered after a failed run: status shows no old run's error as current", async () => {
    const { store, env } = await isolated();
    await seedCounters(store, 60);
    const throwing = INCREMENT_MIGRATION().replace("c.set('n',", "if (c.key.name === 'c-7') throw new Error('cannot handle c-7');\n      c.set('n',");
    const app = tempApp({ 'migrations/0001_increment.ts': throwing });
    const failed = await runCli(['migrate'], { cwd: app, env });
    expect(failed.code).toBe(1);
    expect((await runCli(['status'], { cwd: app, env })).stdout).toMatch(/failed: .*cannot handle c-7/);
    writeFileSync(path.join(app, 'migrations/0001_increment.ts'), INCREMENT_MIGRATION());
    expect((await runCli(['migrate', '--allow-changed'], { cwd: app, env })).code).toBe(0);
    const recovered = await runCli(['status'], { cwd: app, env });
    expect(recovered.stdout).not.toMatch(/cannot handle c-7/);
    expect(recovered.stdout).toMatch(/0001_increment\s+applied/);
    expect(recovered.stdout).toMatch(/Last runs:[\s\S]*local\s+done\s+forward[\s\S]*local\s+failed\s+forward/);
  });

  test('a Cloud Tasks run forward and backed out: the watcher on another process counts what each direction changed', async () => {
    const { store, env: base } = await isolated();
    await seedCounters(store, N);
    const app = tempApp({
      'migrations/0001_increment.ts': SLOW_INCREMENT,
      'migrations/0002_tag.ts': TAG_MIGRATION,
      'dsmigrate.config.json': JSON.stringify({ cloudTasks: { queue: h.queue.name, sliceSeconds: 0.3, queueSettings: FAST_QUEUE } }),
    });
    const worker = await inProcessWorker(h, store, await graphOf(app));
    workers.push(worker);
    const env = { ...base, CLOUD_TASKS_EMULATOR_HOST: h.emulator.host, DSMIGRATE_WORKER_URL: worker.url, DSMIGRATE_WORKER_SECRET: SECRET };

    const forward = await runCli(['status', '--watch', '--json', '--run', await dispatch(app, env)], { cwd: app, env });
    expect({ code: forward.code, stderr: forward.stderr }).toEqual({ code: 0, stderr: expect.any(String) as string });
    expect(stepCounts(forward)).toEqual([expect.objectContaining({ scanned: N, changed: N }), expect.objectContaining({ scanned: N, changed: N })]);
    expect(events(forward).at(-1)).toMatchObject({ event: 'summary', applied: ['default:0001_increment', 'default:0002_tag'] });

    // Backing out the tag through the tasks: the watcher reports what the reverse changed, not zeros.
    const back = await runCli(['status', '--watch', '--json', '--run', await dispatch(app, env, '0001')], { cwd: app, env });
    expect({ code: back.code, stderr: back.stderr }).toEqual({ code: 0, stderr: expect.any(String) as string });
    expect(stepCounts(back)).toEqual([expect.objectContaining({ scanned: N, changed: N })]);
    expect(events(back).at(-1)).toMatchObject({ event: 'summary', unapplied: ['default:0002_tag'] });
    for await (const c of store.query({ kind: 'Counter' })) expect(c.has('tag')).toBe(false);
    expect((await counterValues(store)).filter((v) => v === 1)).toHaveLength(N);

    const status = JSON.parse((await runCli(['status', '--json', '--runs'], { cwd: app, env })).stdout) as { current: unknown; runs: { status: string; direction: string }[] };
    expect(status.current).toBeNull();
    expect(status.runs.slice(0, 2)).toEqual([expect.objectContaining({ status: 'done', direction: 'reverse' }), expect.objectContaining({ status: 'done', direction: 'forward' })]);
  });

  test('a Cloud Tasks run whose worker lacks the migration: the following CLI names it within seconds, and exits 4 once the attempts are spent', async () => {
    const { store, env: base } = await isolated();
    await seedCounters(store, 50);
    // A queue of its own, whose retries come a second or two apart, as in production (and not 50 ms).
    const config = JSON.stringify({
      cloudTasks: { queue: `${h.queue.name}-slow`, sliceSeconds: 0.3, maxStepAttempts: 4, queueSettings: { ...FAST_QUEUE, minBackoffSeconds: 1, maxBackoffSeconds: 2 } },
    });
    const app = tempApp({ 'migrations/0001_increment.ts': INCREMENT_MIGRATION(), 'migrations/0002_tag.ts': TAG_MIGRATION, 'dsmigrate.config.json': config });
    // The worker was deployed before 0002 was written.
    const stale = tempApp({ 'migrations/0001_increment.ts': INCREMENT_MIGRATION() });
    const first = await runCli(['migrate', '0001'], { cwd: app, env: base });
    expect(first.code).toBe(0);
    const failures: number[] = [];
    // It notes when it answers 500: a failed delivery, which Cloud Tasks retries.
    const logged = await startWorker({ store, graph: await graphOf(stale), settings: h.workerSettings(), log: (entry) => (entry.status === 500 ? failures.push(Date.now()) : undefined) });
    workers.push(logged);
    const env = { ...base, CLOUD_TASKS_EMULATOR_HOST: h.emulator.host, DSMIGRATE_WORKER_URL: logged.url, DSMIGRATE_WORKER_SECRET: SECRET };

    let waitingAt: number | undefined;
    const result = await runCli(['migrate', '--executor', 'cloud-tasks', '--json'], {
      cwd: app,
      env,
      onLine: (line) => {
        if (waitingAt === undefined && line.includes('"event":"waiting"')) waitingAt = Date.now();
      },
    });
    expect(failures.length).toBeGreaterThan(0);
    expect(waitingAt).toBeDefined();
    expect(waitingAt! - failures[0]).toBeLessThan(10_000);
    const waiting = events(result).find((e) => e.event === 'waiting')!;
    expect(waiting.reason).toMatch(/default:0002_tag is not among this process's migration files: deploy the worker/);
    expect(result.code).toBe(4);
    expect(events(result).find((e) => 'code' in e)).toMatchObject({
      code: 'STEP_ATTEMPTS_SPENT',
      error: expect.stringMatching(/default:0002_tag.*deploy the worker.*maxStepAttempts is 4/s) as string,
    });
  });
});
