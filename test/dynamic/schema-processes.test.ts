import { rmSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { CONTROL_KINDS } from '../../src/control';
import { Entity, Key, type Datastore } from '../../src/datastore';
import { ModelFactory, schemaMigrationId } from '../../src/dynamic';
import { Recorder } from '../../src/migrations';
import { describeEachFlavour } from '../support/emulators';
import type { SchemaJob, SchemaOutcome, WorkerStep } from './support/schema-worker';
import { pausing, startSchemaWorker, tempFile, waitForFile, type SchemaWorkerExit } from './support/schema-worker-client';

const N = 120;
const BATCH = 20;

const rename: WorkerStep = { op: 'update', name: 'Survey', change: { rename: { from: 'title', to: 'heading' } }, autoApply: true, retryConflicts: true };
const toDouble: WorkerStep = { op: 'update', name: 'Survey', change: { retype: { field: 'n', type: 'double' } }, autoApply: true, retryConflicts: true };

describeEachFlavour('Schema plans of concurrent updaters in two processes', (ctx) => {
  let seq = 0;

  async function setup(): Promise<{ store: Datastore; factory: ModelFactory; job: (steps: WorkerStep[], startFile?: string) => SchemaJob; namespace: string; control: string }> {
    const store = await ctx.connect();
    const n = ++seq;
    const namespace = `concurrent-${n}`;
    const control = `concurrent-ctl-${n}`;
    const factory = new ModelFactory(store, { namespace, controlNamespace: control, stalenessMs: 0 });
    await factory.define({
      name: 'Survey',
      kind: 'Answer',
      fields: [
        { name: 'title', type: 'string', nullable: true },
        { name: 'n', type: 'integer', nullable: true },
      ],
    });
    await store.save(Array.from({ length: N }, (_, i) => Entity.from(Key.of('Answer', i + 1, { namespace }), { title: `t${i + 1}`, n: i + 1 })));
    // A lease of 15 s: these processes release it when done, and a shorter one was lost to a renewal delayed on a loaded machine.
    const job = (steps: WorkerStep[], startFile?: string): SchemaJob => ({ namespace, control, batchSize: BATCH, lockWaitMs: 180_000, lockTtlMs: 15_000, concurrency: 1, startFile, steps });
    return { store, factory, job, namespace, control };
  }

  function expectOk(exit: SchemaWorkerExit): SchemaOutcome {
    if (!exit.outcome?.ok) throw new Error(`the worker failed: ${exit.code ?? exit.signal}\n${JSON.stringify(exit.outcome)}\n${exit.stderr}`);
    return exit.outcome;
  }

  /**
   * What both updates must leave, whichever got which version: versions 2 and 3, one plan each (from
   * the version before), both applied, each recorded once, v2's finished before v3's started, and
   * every entity renamed and converted.
   */
  async function expectBothAppliedInOrder(store: Datastore, factory: ModelFactory, namespace: string, control: string, outcomes: SchemaOutcome[]): Promise<void> {
    const versions = outcomes.map((o) => o.results.find((r) => r.op === 'update')!.version);
    expect([...versions].sort()).toEqual([2, 3]);

    const plans = await factory.schemaMigrations('Survey');
    expect(plans.map((m) => [m.plan.fromVersion, m.plan.toVersion, m.status])).toEqual([
      [1, 2, 'applied'],
      [2, 3, 'applied'],
    ]);
    // The update that got each version planned its own change, from the definition before it.
    const changeOf = (version: number) => (versions[0] === version ? 'CopyFieldData' : 'ConvertField');
    expect(plans.map((m) => m.plan.steps.map((s) => s.type))).toEqual([[changeOf(2)], [changeOf(3)]]);
    expect((await factory.getDefinition('Survey')).fields.map((f) => [f.name, f.type])).toEqual([
      ['heading', 'string'],
      ['n', 'double'],
    ]);
    expect((await factory.list())[0]).toMatchObject({ version: 3, appliedVersion: 3 });

    const ids = [1, 2].map((from) => schemaMigrationId(namespace, { model: 'Survey', fromVersion: from, toVersion: from + 1 }));
    const stored: string[] = [];
    for await (const e of store.query({ kind: CONTROL_KINDS.migration, namespace: control })) stored.push(String(e.key.name));
    expect(stored.sort()).toEqual(ids);
    const recorder = new Recorder(store, control);
    const [first, second] = await Promise.all(ids.map((id) => recorder.get(id)));
    expect([first?.state, second?.state]).toEqual(['applied', 'applied']);
    expect(second!.startedAt!.getTime()).toBeGreaterThanOrEqual(first!.finishedAt!.getTime());

    // Each plan's run started once, in either process, and v2's ended before v3's began.
    const events = outcomes.flatMap((o) => o.events).sort((a, b) => a.at - b.at);
    const starts = events.filter((e) => e.type === 'migration-start');
    expect(starts.map((e) => e.migration)).toEqual(ids);
    const v2Done = events.find((e) => e.type === 'migration-done' && e.migration === ids[0])!;
    expect(v2Done.at).toBeLessThanOrEqual(starts[1].at);

    // By key lookups: strongly consistent, unlike the classic emulator's queries.
    const after = (await store.lookup(Array.from({ length: N }, (_, i) => Key.of('Answer', i + 1, { namespace })))).filter((e): e is Entity => e !== undefined);
    expect(after).toHaveLength(N);
    for (const [i, e] of after.entries()) {
      expect(e.get('heading')).toBe(`t${i + 1}`);
      expect(e.typeOf('n')).toBe('double');
      expect(e.get('n')).toBe(i + 1);
    }
    expect((await (await factory.get('Survey')).get(store, 9))!.values).toEqual({ heading: 't9', n: 9 });
  }

  it('two processes updating at the same moment each get their own version and one plan, and the plans run in version order', async () => {
    const { store, factory, job, namespace, control } = await setup();
    const start = tempFile('start');
    const workers = [startSchemaWorker(ctx.env(), job([rename], start)), startSchemaWorker(ctx.env(), job([toDouble], start))];
    await Promise.all(workers.map((w) => w.ready));
    writeFileSync(start, 'go\n');
    const outcomes = (await Promise.all(workers.map((w) => w.done))).map(expectOk);
    await expectBothAppliedInOrder(store, factory, namespace, control, outcomes);
  });

  it('the later version waits for the earlier plan another process is running, then runs its own', async () => {
    const { store, factory, job, namespace, control } = await setup();
    // v2 (the rename) is held midway through its plan, under the lease...
    const pause = pausing(ctx.env(), 2);
    const first = startSchemaWorker(pause.env, job([rename]));
    await waitForFile(pause.file, first);
    // ...while the other process stores v3 and, applying it, must wait for v2's.
    const second = startSchemaWorker(ctx.env(), job([toDouble]));
    for (let attempt = 0; (await factory.getDefinition('Survey')).version < 3; attempt++) {
      if (attempt > 2400) throw new Error('v3 was not stored');
      await sleep(50);
    }
    expect((await factory.schemaMigrations('Survey')).map((m) => [m.plan.toVersion, m.status])).toEqual([
      [2, 'approved'],
      [3, 'approved'],
    ]);
    rmSync(pause.file);
    const outcomes = [expectOk(await first.done), expectOk(await second.done)];
    expect(outcomes.map((o) => o.results[0].version)).toEqual([2, 3]);
    await expectBothAppliedInOrder(store, factory, namespace, control, outcomes);
  });
});
