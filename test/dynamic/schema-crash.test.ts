import { rmSync } from 'node:fs';
import { CONTROL_KINDS } from '../../src/control';
import { Entity, Key, type Datastore } from '../../src/datastore';
import { ModelFactory, schemaMigrationId } from '../../src/dynamic';
import { Recorder } from '../../src/migrations';
import { describeEachFlavour } from '../support/emulators';
import type { SchemaJob, WorkerStep } from './support/schema-worker';
import { pausing, startSchemaWorker, waitForFile, type SchemaWorkerExit } from './support/schema-worker-client';

const N = 240;
const BATCH = 20;
const LEASE_TTL_MS = 2000;

describeEachFlavour('Schema plans killed midway', (ctx) => {
  let seq = 0;

  /** A definition Survey (kind Answer) over N stored entities: title `t<i>`, n = i (an integer). */
  async function setup(): Promise<{ store: Datastore; factory: ModelFactory; job: (steps: WorkerStep[]) => SchemaJob; namespace: string; control: string }> {
    const store = await ctx.connect();
    const n = ++seq;
    const namespace = `crash-${n}`;
    const control = `crash-ctl-${n}`;
    const factory = new ModelFactory(store, { namespace, controlNamespace: control, stalenessMs: 0, schemaBatchSize: BATCH, lockTtlMs: LEASE_TTL_MS, lockWaitMs: 120_000 });
    await factory.define({
      name: 'Survey',
      kind: 'Answer',
      fields: [
        { name: 'title', type: 'string', nullable: true },
        { name: 'n', type: 'integer', nullable: true },
      ],
    });
    await store.save(Array.from({ length: N }, (_, i) => Entity.from(Key.of('Answer', i + 1, { namespace }), { title: `t${i + 1}`, n: i + 1 })));
    // Shards one at a time, so that the pause point stops the whole run.
    const job = (steps: WorkerStep[]): SchemaJob => ({ namespace, control, batchSize: BATCH, lockWaitMs: 120_000, lockTtlMs: LEASE_TTL_MS, concurrency: 1, steps });
    return { store, factory, job, namespace, control };
  }

  /** Every Answer seeded, by key lookups (strongly consistent, unlike the classic emulator's queries). */
  async function answers(store: Datastore, namespace: string): Promise<Entity[]> {
    const found = await store.lookup(Array.from({ length: N }, (_, i) => Key.of('Answer', i + 1, { namespace })));
    return found.filter((e): e is Entity => e !== undefined);
  }

  /** The ids of every record in the control namespace's _dsmigrate_migration. */
  async function recordIds(store: Datastore, control: string): Promise<string[]> {
    const out: string[] = [];
    for await (const e of store.query({ kind: CONTROL_KINDS.migration, namespace: control })) out.push(String(e.key.name));
    return out.sort();
  }

  /** Runs a worker paused after `batches` committed batches, checks it did part of the work, and SIGKILLs it there. */
  async function killedMidway(env: NodeJS.ProcessEnv, job: SchemaJob, batches: number, done: () => Promise<number>): Promise<number> {
    const pause = pausing(env, batches);
    const worker = startSchemaWorker(pause.env, job);
    try {
      await waitForFile(pause.file, worker);
    } catch (error) {
      worker.kill();
      throw error;
    }
    const partial = await done();
    worker.kill();
    const exit = await worker.done;
    rmSync(pause.file, { force: true });
    expect(exit.signal).toBe('SIGKILL');
    expect(exit.outcome).toBeUndefined();
    // Part of the work, not all: batches end at shard boundaries too, so `batches` of them may hold fewer than batches × BATCH.
    expect(partial).toBeGreaterThanOrEqual(batches);
    expect(partial).toBeLessThan(N);
    return partial;
  }

  function expectOk(exit: SchemaWorkerExit): NonNullable<SchemaWorkerExit['outcome']> {
    if (!exit.outcome?.ok) throw new Error(`the worker failed: ${exit.code ?? exit.signal}\n${JSON.stringify(exit.outcome)}\n${exit.stderr}`);
    return exit.outcome;
  }

  /** The counts of each operation the run reported done. */
  function doneCounts(outcome: NonNullable<SchemaWorkerExit['outcome']>): { scanned: number; changed: number; failed: number }[] {
    return outcome.events.flatMap((e) => (e.type === 'operation-done' ? [{ scanned: e.result.scanned, changed: e.result.changed, failed: e.result.failed }] : []));
  }

  it('a rename by update(autoApply) killed at the pause point resumes in a new process and is applied once', async () => {
    const { store, factory, job, namespace, control } = await setup();
    const id = schemaMigrationId(namespace, { model: 'Survey', fromVersion: 1, toVersion: 2 });
    const copied = async () => (await answers(store, namespace)).filter((e) => e.has('heading')).length;

    await killedMidway(ctx.env(), job([{ op: 'update', name: 'Survey', change: { rename: { from: 'title', to: 'heading' } }, autoApply: true }]), 3, copied);
    // The version and its plan were committed before the run; the run is recorded but not applied.
    expect((await factory.getDefinition('Survey')).version).toBe(2);
    expect((await factory.schemaMigrations('Survey')).map((m) => [m.plan.toVersion, m.status])).toEqual([[2, 'approved']]);
    expect((await new Recorder(store, control).get(id))?.state).toBe('running');

    // A new process resumes it once the dead one's lease has expired.
    const resumed = expectOk(await startSchemaWorker(ctx.env(), job([{ op: 'apply', name: 'Survey' }])).done);
    expect(resumed.results).toEqual([{ op: 'apply', ran: ['v1-v2'] }]);
    expect(resumed.events.filter((e) => e.type === 'migration-start')).toEqual([expect.objectContaining({ migration: id, resumed: true })]);
    // The job's counts (kept with its checkpoints, across both processes): every entity once.
    expect(doneCounts(resumed)).toEqual([{ scanned: N, changed: N, failed: 0 }]);

    const after = await answers(store, namespace);
    expect(after).toHaveLength(N);
    for (const [i, e] of after.entries()) {
      expect(e.get('heading')).toBe(`t${i + 1}`);
      expect(e.get('title')).toBe(`t${i + 1}`); // orphaned, kept
      expect(e.get('n')).toBe(i + 1);
    }
    expect((await new Recorder(store, control).get(id))?.state).toBe('applied');
    expect(await recordIds(store, control)).toEqual([id]);
    expect((await factory.schemaMigrations('Survey')).map((m) => [m.plan.toVersion, m.status])).toEqual([[2, 'applied']]);
    expect((await factory.list())[0]).toMatchObject({ version: 2, appliedVersion: 2 });
    // Applying again runs nothing.
    expect(await factory.applyPendingSchema('Survey')).toEqual([]);
    expect(await recordIds(store, control)).toEqual([id]);
  });

  it('a lossless conversion by applyPendingSchema killed at the pause point resumes in a new process and is applied once', async () => {
    const { store, factory, job, namespace, control } = await setup();
    await factory.update('Survey', (d) => ({ fields: d.fields.map((f) => (f.name === 'n' ? { ...f, type: 'double' as const } : f)) }));
    const id = schemaMigrationId(namespace, { model: 'Survey', fromVersion: 1, toVersion: 2 });
    const converted = async () => (await answers(store, namespace)).filter((e) => e.typeOf('n') === 'double').length;

    await killedMidway(ctx.env(), job([{ op: 'apply', name: 'Survey' }]), 4, converted);
    expect((await factory.schemaMigrations('Survey')).map((m) => m.status)).toEqual(['approved']);
    expect((await new Recorder(store, control).get(id))?.state).toBe('running');

    const resumed = expectOk(await startSchemaWorker(ctx.env(), job([{ op: 'apply', name: 'Survey' }])).done);
    expect(resumed.results).toEqual([{ op: 'apply', ran: ['v1-v2'] }]);
    expect(resumed.events.filter((e) => e.type === 'migration-start')).toEqual([expect.objectContaining({ migration: id, resumed: true })]);
    expect(doneCounts(resumed)).toEqual([{ scanned: N, changed: N, failed: 0 }]);

    const after = await answers(store, namespace);
    expect(after).toHaveLength(N);
    for (const [i, e] of after.entries()) {
      expect(e.typeOf('n')).toBe('double');
      expect(e.get('n')).toBe(i + 1);
      expect(e.get('title')).toBe(`t${i + 1}`);
    }
    expect((await new Recorder(store, control).get(id))?.state).toBe('applied');
    expect(await recordIds(store, control)).toEqual([id]);
    expect((await factory.schemaMigrations('Survey')).map((m) => m.status)).toEqual(['applied']);
    expect((await factory.list())[0]).toMatchObject({ version: 2, appliedVersion: 2 });
    expect((await (await factory.get('Survey')).get(store, 7))!.values).toEqual({ title: 't7', n: 7 });
  });
});
