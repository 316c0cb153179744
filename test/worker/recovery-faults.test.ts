import { CONTROL_KINDS } from '../../src/control';
import type { Datastore, Key, Mutation, RetryOptions } from '../../src/datastore';
import { Lease, Recorder } from '../../src/migrations';
import type { RunningWorker } from '../../src/worker';
import { tempApp } from '../support/cli';
import { describeEachFlavour, uniqueProject } from '../support/emulators';
import { countOf, graphOf, incrementOp, inProcessWorker, migrationOf, personValues, RECOVERY_FAULTS, runThroughTasks, seedPeople, startTasks, type TasksHarness } from './support/harness';

/**
 * Datastore answering badly inside the worker, through `--executor cloud-tasks` with every fault of
 * the emulator on: a transition's commit that reports DEADLINE_EXCEEDED after it was applied, and a
 * step whose reads keep failing with UNAVAILABLE.
 */
const N = 200;
const RUN_MS = 120_000;

/** A gRPC error as the client reports it. */
const grpcError = (code: number, message: string): Error => Object.assign(new Error(message), { code });

describeEachFlavour('Datastore faults in the worker, through Cloud Tasks', (ctx) => {
  let h: TasksHarness;
  const workers: RunningWorker[] = [];

  beforeAll(async () => {
    h = await startTasks({ seed: 20, ...RECOVERY_FAULTS });
  });
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await h.close();
  });

  async function fresh(): Promise<Datastore> {
    const store = await ctx.connect({ projectId: uniqueProject('rcf') });
    await seedPeople(store, N);
    return store;
  }

  /** A run of two migrations (three steps) whose worker's transition commits report DEADLINE_EXCEEDED once applied. */
  const transitionsLoseTheirAnswer = (retry: RetryOptions) => async (): Promise<void> => {
    const store = await fresh();
    const graph = await graphOf(tempApp({ 'migrations/0001_ab.ts': migrationOf(incrementOp('a'), incrementOp('b')), 'migrations/0002_c.ts': migrationOf(incrementOp('c')) }));
    // The worker's own connection: its transactional commits report DEADLINE_EXCEEDED, once applied,
    // the first time the run's state reaches each new place (a step complete, a migration finished,
    // the run done): the transitions, and only they, as no other commit moves the run.
    const workerStore = await ctx.connect({ projectId: store.projectId, retry });
    const reached = new Set<string>(['0/0']);
    const injected: string[] = [];
    const commit = workerStore['commitTransaction'].bind(workerStore);
    workerStore['commitTransaction'] = async (id: Uint8Array | string, mutations: readonly Mutation[]) => {
      const result = await commit(id, mutations);
      for (const m of mutations) {
        if (!('upsert' in m) || m.upsert.key.kind !== CONTROL_KINDS.run) continue;
        const at = `${String(m.upsert.get('current'))}/${String(m.upsert.get('step'))}`;
        if (reached.has(at)) continue;
        reached.add(at);
        injected.push(`${at} ${String(m.upsert.get('status'))}`);
        throw grpcError(4, `injected: the commit reaching ${at} was applied, its answer lost`);
      }
      return result;
    };
    const worker = await inProcessWorker(h, workerStore, graph);
    workers.push(worker);

    const { run } = await runThroughTasks(h, store, graph, worker.url, { timeoutMs: RUN_MS });
    expect(run?.status).toBe('done');
    // 0001's second step, 0001 finished (0002 current), 0002 finished (the run done).
    expect(injected).toEqual(['0/1 running', '1/0 running', '2/0 done']);
    for (const field of ['a', 'b', 'c']) {
      const values = await personValues(store, field);
      expect(values).toHaveLength(N);
      expect(countOf(values, 1)).toBe(N);
    }
    const records = await new Recorder(store, '').list();
    expect([...records.values()].map((r) => [r.id, r.state])).toEqual([
      ['default:0001_ab', 'applied'],
      ['default:0002_c', 'applied'],
    ]);
    expect(await Lease.holder(store, '')).toBeUndefined();
  };

  test('a transition whose commit reports DEADLINE_EXCEEDED after it was applied still finishes the run, exactly +1 (retried in the transaction)', transitionsLoseTheirAnswer({}), RUN_MS * 2);

  /*
   * Only contention retried in the worker's transactions: the error reaches the task, and a later
   * delivery must carry out what follows the transition, even when the transition was taken by a
   * duplicate delivery whose failure Cloud Tasks never retries (the step's other finishing tasks are
   * retried until the run has moved on: src/executors/cloud-tasks/pipeline.ts, completeIfDone).
   */
  test('a transition whose commit reports DEADLINE_EXCEEDED after it was applied still finishes the run, exactly +1 (retried by Cloud Tasks)', transitionsLoseTheirAnswer({ codes: [10] }), RUN_MS * 2);

  test(
    'a step whose reads keep failing with UNAVAILABLE fails after maxStepAttempts, its run failed and the lock released',
    async () => {
      const store = await fresh();
      const graph = await graphOf(tempApp({ 'migrations/0001_a.ts': migrationOf(incrementOp('a', '{ batchSize: 25, shardCount: 1 }')) }));
      // The worker's own connection gives up a transaction after 2 attempts (not 100 over a minute), so
      // that each delivery fails fast and the queue's retries, counted by Cloud Tasks, decide.
      const workerStore = await ctx.connect({ projectId: store.projectId, retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 50 } });
      let injected = 0;
      const lookup = workerStore.lookup.bind(workerStore);
      workerStore.lookup = async (keys: readonly Key[], transaction?: Uint8Array | string, properties?: readonly string[]) => {
        // A batch's reads of the data: UNAVAILABLE, for good. The control kinds read as usual.
        if (transaction !== undefined && keys.some((k) => k.kind === 'Person')) {
          injected += 1;
          throw grpcError(14, 'injected UNAVAILABLE: Person cannot be read');
        }
        return lookup(keys, transaction, properties);
      };
      const worker = await inProcessWorker(h, workerStore, graph);
      workers.push(worker);

      const { run } = await runThroughTasks(h, store, graph, worker.url, { timeoutMs: RUN_MS, dispatch: { maxStepAttempts: 3 } });
      const reason = /injected UNAVAILABLE: Person cannot be read \(the step failed \d+ times; cloudTasks\.maxStepAttempts is 3\)/;
      expect(run).toMatchObject({ status: 'failed', error: expect.stringMatching(reason) });
      expect(injected).toBeGreaterThan(0);
      expect(await new Recorder(store, '').get('default:0001_a')).toMatchObject({ state: 'failed', error: expect.stringMatching(reason) });
      expect(await Lease.holder(store, '')).toBeUndefined();
      const values = await personValues(store, 'a');
      expect(values).toHaveLength(N);
      expect(countOf(values, 0)).toBe(N);
    },
    RUN_MS * 2,
  );
});
