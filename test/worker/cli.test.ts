import { Recorder } from '../../src/migrations';
import { loadRun } from '../../src/migrations';
import type { RunningWorker } from '../../src/worker';
import { runCli, tempApp } from '../support/cli';
import { uniqueProject } from '../support/emulators';
import { Datastore, Entity, Key } from '../../src/datastore';
import {
  counterValues,
  FAST_QUEUE,
  graphOf,
  INCREMENT_MIGRATION,
  inProcessWorker,
  SECRET,
  seedCounters,
  singleFlavour,
  startTasks,
  TAG_MIGRATION,
  type TasksHarness,
  waitForRun,
} from './support/harness';

const SLOW_INCREMENT = INCREMENT_MIGRATION('{ shardCount: 3, batchSize: 20 }', 5);

const lines = (stdout: string): Record<string, unknown>[] =>
  stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

/** One flavour: these tests are about the CLI; the engine under it is tested on both. */
describe('dsmigrate migrate --executor cloud-tasks', () => {
  const ctx = singleFlavour('firestore', 'cli');
  const stores: Datastore[] = [];
  const connect = async () => {
    stores.push(await ctx.connect());
    return stores.at(-1)!;
  };
  let h: TasksHarness;
  let worker: RunningWorker;
  let dir: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    h = await startTasks();
    const store = await connect();
    await seedCounters(store, 600);
    dir = tempApp({
      'migrations/0001_increment.ts': SLOW_INCREMENT,
      'migrations/0002_tag.ts': TAG_MIGRATION,
      'dsmigrate.config.json': JSON.stringify({ cloudTasks: { queue: h.queue.name, sliceSeconds: 0.3, queueSettings: FAST_QUEUE } }),
    });
    worker = await inProcessWorker(h, store, await graphOf(dir));
    env = { ...ctx.env(), CLOUD_TASKS_EMULATOR_HOST: h.emulator.host, DSMIGRATE_WORKER_URL: worker.url, DSMIGRATE_WORKER_SECRET: SECRET };
  });
  afterAll(async () => {
    await worker.stop();
    await h.close();
    await Promise.all(stores.map((s) => s.close()));
  });

  test('--no-wait returns once dispatched, the run completes in the background, status shows it', async () => {
    const store = await connect();
    const dispatched = await runCli(['migrate', '--executor', 'cloud-tasks', '--no-wait', '--json'], { cwd: dir, env });
    expect(dispatched.code).toBe(0);
    const event = lines(dispatched.stdout).find((e) => e.event === 'dispatched')!;
    expect(event).toMatchObject({ queue: h.queue.name, migrations: ['default:0001_increment', 'default:0002_tag'], wait: false });
    const runId = String(event.run);
    expect((await loadRun(store, '', runId))?.status).toBe('running');

    // While it runs, the run holds the lock: a local migrate is refused (exit 3) and touches nothing.
    const local = await runCli(['migrate'], { cwd: dir, env });
    expect(local.code).toBe(3);
    expect(local.stderr).toMatch(/run:run-/);

    const during = await runCli(['status', '--json'], { cwd: dir, env });
    expect(JSON.parse(during.stdout)).toContainEqual(expect.objectContaining({ name: '0001_increment', state: expect.stringMatching(/running|applied/) }));

    expect((await waitForRun(store, runId)).status).toBe('done');
    const after = JSON.parse((await runCli(['status', '--json'], { cwd: dir, env })).stdout) as { name: string; state: string }[];
    expect(after.map((r) => [r.name, r.state])).toEqual([
      ['0001_increment', 'applied'],
      ['0002_tag', 'applied'],
    ]);
    expect((await counterValues(store)).every((v) => v === 1)).toBe(true);
  });

  test('without --no-wait it follows the run with the same events as a local run, and exits 0 when it is done', async () => {
    const store = await connect();
    // Unapply the tag migration through the tasks too, to have something to run.
    const result = await runCli(['migrate', '0001', '--executor', 'cloud-tasks', '--json'], { cwd: dir, env });
    expect(result.code).toBe(0);
    const events = lines(result.stdout);
    expect(events.map((e) => e.event)).toEqual([
      'plan',
      'dispatched',
      'migration-start',
      'operation-start',
      ...events.slice(4, -3).map(() => 'progress'),
      'operation-done',
      'migration-done',
      'summary',
    ]);
    expect(events.at(-1)).toMatchObject({ unapplied: ['default:0002_tag'] });
    expect(await new Recorder(store, '').get('default:0002_tag')).toBeUndefined();
    for await (const c of store.query({ kind: 'Counter' })) expect(c.has('tag')).toBe(false);
  });

  test('prunes before-images past their retention once it followed the run to its end, as a local migrate does', async () => {
    // A project of its own: its own records, lease and worker.
    const projectId = uniqueProject('cliundo');
    const store = await Datastore.connect({ emulatorHost: ctx.host, projectId });
    stores.push(store);
    await store.save(Array.from({ length: 20 }, (_, i) => Entity.from(Key.of('Gauge', i + 1), { reading: i })));
    const undoDir = tempApp({
      'migrations/0001_drop.ts': `import { defineMigration, RemoveFieldData } from 'datastore-migrate';\nexport default defineMigration({ operations: [new RemoveFieldData('Gauge', 'reading', { undo: { retain: '2s' } })] });\n`,
      'dsmigrate.config.json': JSON.stringify({ cloudTasks: { queue: h.queue.name, sliceSeconds: 0.3, queueSettings: FAST_QUEUE } }),
    });
    const undoWorker = await inProcessWorker(h, store, await graphOf(undoDir));
    try {
      const undoEnv = { ...env, DATASTORE_PROJECT_ID: projectId, GOOGLE_CLOUD_PROJECT: projectId, DSMIGRATE_WORKER_URL: undoWorker.url };
      const images = async () => {
        let n = 0;
        for await (const keys of store.keys({ kind: '_dsmigrate_undo' })) n += keys.filter((k) => !String(k.name).endsWith('|~')).length;
        return n;
      };
      expect((await runCli(['migrate', '--executor', 'cloud-tasks'], { cwd: undoDir, env: undoEnv })).code).toBe(0);
      expect(await images()).toBe(20);
      await new Promise((r) => setTimeout(r, 2500));
      // Nothing is pending: the run ends at once, and the images have expired.
      expect((await runCli(['migrate', '--executor', 'cloud-tasks'], { cwd: undoDir, env: undoEnv })).code).toBe(0);
      expect(await images()).toBe(0);
    } finally {
      await undoWorker.stop();
    }
  });
});
