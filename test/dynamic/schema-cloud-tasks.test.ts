import { Entity, Key, type Datastore } from '../../src/datastore';
import { ModelFactory, schemaMigrationResolver } from '../../src/dynamic';
import { startRun } from '../../src/executors/cloud-tasks';
import { recentRuns } from '../../src/migrations';
import { planMigration } from '../../src/dynamic/schema-run';
import { buildGraph, Lease, Recorder } from '../../src/migrations';
import type { RunningWorker, WorkerLogEntry } from '../../src/worker';
import { runCli, tempApp } from '../support/cli';
import { describeEachFlavour } from '../support/emulators';
import { FAST_QUEUE, inProcessWorker, RECOVERY_FAULTS, SECRET, startTasks, type TasksHarness, waitForRun } from '../worker/support/harness';

/**
 * Runtime models' schema migrations through `dsmigrate schema apply|cleanup --executor cloud-tasks`: the
 * CLI starts a Cloud Tasks run and follows it; a worker that has no migration files rebuilds the plan's
 * operations from the stored plan and definition, under dispatch faults (failed, duplicated, overlapping
 * and unanswered deliveries). Each test checks every entity.
 */
const N = 120;
const RUN_MS = 180_000;

describeEachFlavour('dsmigrate schema --executor cloud-tasks', (ctx) => {
  let h: TasksHarness;
  let worker: RunningWorker;
  let store: Datastore;
  let cwd: string;
  let env: NodeJS.ProcessEnv;
  const log: WorkerLogEntry[] = [];

  beforeAll(async () => {
    h = await startTasks({ seed: 12, ...RECOVERY_FAULTS });
    store = await ctx.connect();
    // No migration files at all: everything the worker runs here, it rebuilds from what is stored.
    worker = await inProcessWorker(h, await ctx.connect(), buildGraph([]), log);
    cwd = tempApp({
      'migrations/.keep': '',
      'dsmigrate.config.json': JSON.stringify({ cloudTasks: { queue: h.queue.name, sliceSeconds: 0.3, queueSettings: FAST_QUEUE } }),
    });
    env = { ...ctx.env(), CLOUD_TASKS_EMULATOR_HOST: h.emulator.host, DSMIGRATE_WORKER_URL: worker.url, DSMIGRATE_WORKER_SECRET: SECRET };
  });
  afterAll(async () => {
    await worker.stop();
    await h.close();
  });

  const cli = (namespace: string, ...args: string[]) => runCli(['schema', ...args, '--models-namespace', namespace], { cwd, env });

  async function answers(namespace: string): Promise<Entity[]> {
    const out: Entity[] = [];
    for await (const entity of store.query({ kind: 'Answer', namespace })) out.push(entity);
    return out.sort((a, b) => Number(a.key.path[0].id) - Number(b.key.path[0].id));
  }

  test(
    'a rename and a conversion run on the worker, each entity migrated once, recorded applied with its versions; cleanup too',
    async () => {
      const namespace = 'ct-schema';
      const factory = new ModelFactory(store, { namespace, stalenessMs: 0, register: false });
      await factory.define({
        name: 'Survey',
        kind: 'Answer',
        fields: [
          { name: 'title', type: 'string', default: 'x' },
          { name: 'tag', type: 'string', nullable: true },
        ],
      });
      await store.save(Array.from({ length: N }, (_, i) => Entity.from(Key.of('Answer', i + 1, { namespace }), { title: `t${i + 1}`, tag: `x${i + 1}` })));
      // v2: title renamed to heading (CopyFieldData); v3: tag becomes an array of strings (a built-in converter).
      await factory.update('Survey', (d) => ({ fields: d.fields.map((f) => (f.name === 'title' ? { ...f, name: 'heading' } : f)) }));
      await factory.update('Survey', (d) => ({
        fields: d.fields.map((f) => (f.name === 'tag' ? { id: f.id, name: 'tag', type: 'array' as const, items: { type: 'string' as const }, default: [] } : f)),
      }));
      expect((await factory.schemaMigrations('Survey')).map((m) => [m.id, m.status, m.plan.steps.map((s) => s.type)])).toEqual([
        [`schema:${namespace}/Survey@v1-v2`, 'approved', ['CopyFieldData']],
        [`schema:${namespace}/Survey@v2-v3`, 'approved', ['ConvertField']],
      ]);

      const renamed = await cli(namespace, 'apply', 'Survey', '--version', '2', '--executor', 'cloud-tasks');
      expect(renamed.stderr).toBe('');
      expect(renamed.code).toBe(0);
      expect(renamed.stdout).toContain('Applied Survey v1→v2.');
      const afterRename = await answers(namespace);
      expect(afterRename).toHaveLength(N);
      for (const [i, e] of afterRename.entries()) {
        expect([e.get('heading'), e.get('title'), e.get('tag')]).toEqual([`t${i + 1}`, `t${i + 1}`, `x${i + 1}`]);
      }

      const converted = await cli(namespace, 'apply', 'Survey', '--version', '3', '--executor', 'cloud-tasks', '--json');
      expect(converted.code).toBe(0);
      expect(JSON.parse(converted.stdout)).toEqual({ applied: [{ model: 'Survey', fromVersion: 2, toVersion: 3 }] });
      const afterConversion = await answers(namespace);
      expect(afterConversion).toHaveLength(N);
      // Converted once: wrapped once, never an array of an array (which Datastore would refuse anyway) nor left a string.
      for (const [i, e] of afterConversion.entries()) expect([e.get('heading'), e.get('tag')]).toEqual([`t${i + 1}`, [`x${i + 1}`]]);

      // Each plan was one Cloud Tasks run, carried out by the worker, which has no files.
      const runs = (await recentRuns(store, '', 20)).filter((r) => r.migrations.some((m) => m.id.startsWith(`schema:${namespace}/`)));
      expect(runs.map((r) => [r.status, r.migrations.map((m) => m.id)]).reverse()).toEqual([
        ['done', [`schema:${namespace}/Survey@v1-v2`]],
        ['done', [`schema:${namespace}/Survey@v2-v3`]],
      ]);
      expect(log.some((entry) => entry.message.includes(`schema:${namespace}/Survey@v2-v3`))).toBe(true);

      // Recorded applied, each operation counting every entity once (duplicated deliveries change nothing).
      const recorder = new Recorder(store, '');
      for (const id of [`schema:${namespace}/Survey@v1-v2`, `schema:${namespace}/Survey@v2-v3`]) {
        const record = (await recorder.get(id))!;
        expect(record).toMatchObject({ state: 'applied', app: 'schema' });
        expect(record.operations.map((o) => o.changed)).toEqual([N]);
      }
      expect((await factory.schemaMigrations('Survey')).map((m) => m.status)).toEqual(['applied', 'applied']);
      const status = await runCli(['status', '--json'], { cwd, env });
      expect(status.code).toBe(0);
      const rows = JSON.parse(status.stdout) as Record<string, unknown>[];
      for (const name of [`${namespace}/Survey@v1-v2`, `${namespace}/Survey@v2-v3`]) {
        expect(rows).toContainEqual(expect.objectContaining({ app: 'schema', name, state: 'applied', schema: true }));
      }

      // Cleanup on the worker too: it rebuilds the removal from the stored list of orphans.
      const cleaned = await cli(namespace, 'cleanup', '--older-than', '0s', '--executor', 'cloud-tasks');
      expect(cleaned.stderr).toBe('');
      expect(cleaned.code).toBe(0);
      const afterCleanup = await answers(namespace);
      expect(afterCleanup).toHaveLength(N);
      for (const [i, e] of afterCleanup.entries()) {
        expect(e.has('title')).toBe(false);
        expect([e.get('heading'), e.get('tag')]).toEqual([`t${i + 1}`, [`x${i + 1}`]]);
      }
      const cleanupRecords = [...(await recorder.list()).values()].filter((r) => r.id.startsWith(`schema:${namespace}/cleanup@`));
      expect(cleanupRecords.map((r) => [r.state, r.operations.map((o) => [o.type, o.changed])])).toEqual([['applied', [['RemoveFieldData', N]]]]);
      expect(await Lease.holder(store, '')).toBeUndefined();
    },
    RUN_MS,
  );

  test(
    'a factory configured for Cloud Tasks runs a safe plan it applies automatically as a run on the worker',
    async () => {
      const namespace = 'ct-factory';
      const factory = new ModelFactory(store, { namespace, stalenessMs: 0, register: false, cloudTasks: { settings: h.dispatch(worker.url), tasks: h.tasks } });
      await factory.define({ name: 'Note', kind: 'Answer', fields: [{ name: 'body', type: 'string', nullable: true }] });
      await store.save(Array.from({ length: 40 }, (_, i) => Entity.from(Key.of('Answer', i + 1, { namespace }), { body: `b${i + 1}` })));

      await factory.update('Note', (d) => ({ fields: d.fields.map((f) => ({ ...f, name: 'text' })) }), { autoApply: true });

      expect((await answers(namespace)).map((e) => e.get('text'))).toEqual(Array.from({ length: 40 }, (_, i) => `b${i + 1}`));
      const id = `schema:${namespace}/Note@v1-v2`;
      expect((await new Recorder(store, '').get(id))?.state).toBe('applied');
      expect((await recentRuns(store, '', 20)).find((r) => r.migrations.some((m) => m.id === id))?.status).toBe('done');
      expect((await factory.schemaMigrations('Note')).map((m) => m.status)).toEqual(['applied']);
    },
    RUN_MS,
  );

  test(
    'a plan with a forced conversion function is refused under Cloud Tasks with exit 2, and nothing changes',
    async () => {
      const namespace = 'ct-forced';
      const factory = new ModelFactory(store, { namespace, stalenessMs: 0, register: false });
      await factory.define({ name: 'Form', kind: 'Answer', fields: [{ name: 'age', type: 'string', nullable: true }] });
      await store.save(Array.from({ length: 10 }, (_, i) => Entity.from(Key.of('Answer', i + 1, { namespace }), { age: String(i + 1) })));
      await factory.update('Form', (d) => ({ fields: d.fields.map((f) => ({ id: f.id, name: 'age', type: 'integer' as const, nullable: true })) }), {
        force: true,
        converters: { age: (v) => Number(v) },
      });
      const runsBefore = (await recentRuns(store, '', 20)).length;

      const refused = await cli(namespace, 'apply', 'Form', '--version', '2', '--executor', 'cloud-tasks');
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain('Model "Form" v1→v2: field "age"');
      expect(refused.stderr).toContain('cannot run under Cloud Tasks');
      // The same refusal from code, even from the process that holds the function: the worker does not.
      const withTasks = new ModelFactory(store, { namespace, stalenessMs: 0, register: false, cloudTasks: { settings: h.dispatch(worker.url), tasks: h.tasks } });
      const context = { model: 'Form', field: 'age', fromVersion: 1, toVersion: 2 };
      await expect(withTasks.applyPendingSchema('Form', { version: 2, approve: true, converters: { age: (v) => Number(v) } })).rejects.toMatchObject({ code: 'BAD_INPUT', context });
      // And a worker asked for it (a run started some other way) refuses to build it, naming the same.
      await expect(schemaMigrationResolver(store)(`schema:${namespace}/Form@v1-v2`)).rejects.toMatchObject({ code: 'BAD_INPUT', context });
      expect(await schemaMigrationResolver(store)(`schema:${namespace}/Form@v1-v3`)).toBeUndefined();

      expect((await answers(namespace)).map((e) => e.get('age'))).toEqual(Array.from({ length: 10 }, (_, i) => String(i + 1)));
      expect((await factory.schemaMigrations('Form')).map((m) => m.status)).toEqual(['pending']);
      expect(await new Recorder(store, '').get(`schema:${namespace}/Form@v1-v2`)).toBeUndefined();
      expect(await recentRuns(store, '', 20)).toHaveLength(runsBefore);
      expect(await Lease.holder(store, '')).toBeUndefined();

      // A run started by the process that holds the function (bypassing the refusal): the worker cannot
      // rebuild it, and fails the migration by its id, naming the field, instead of retrying for ever.
      const [form] = await factory.schemaMigrations('Form');
      const holder = planMigration(namespace, form.plan, await factory.definitionAt('Form', 2), { age: (v) => Number(v) });
      const { run } = await startRun({ store, graph: buildGraph([holder]), tasks: h.tasks, settings: h.dispatch(worker.url) });
      const failed = await waitForRun(store, run!.id, RUN_MS);
      expect(failed).toMatchObject({ status: 'failed', error: expect.stringContaining('field "age"') as string });
      expect(await new Recorder(store, '').get(holder.id)).toMatchObject({ state: 'failed' });
      expect((await answers(namespace)).map((e) => e.get('age'))).toEqual(Array.from({ length: 10 }, (_, i) => String(i + 1)));
      expect(await Lease.holder(store, '')).toBeUndefined();
    },
    RUN_MS,
  );
});
