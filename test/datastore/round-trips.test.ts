import path from 'node:path';
import { migrate } from '../../src/api';
import { Datastore, Entity, Key, type RpcEvent } from '../../src/datastore';
import { LocalExecutor } from '../../src/executors';
import { loadGraph } from '../../src/migrations';
import { tempApp } from '../support/cli';
import { startProxy } from '../support/datastore-proxy';
import { describeEachFlavour, uniqueProject } from '../support/emulators';
import { countOf, incrementOp, migrationOf, personValues, seedPeople } from '../support/people';

const idOf = (id: Uint8Array | string): string => (typeof id === 'string' ? id : Buffer.from(id).toString('base64'));

describeEachFlavour("a transaction's reads fetched ahead (Transaction.prefetch)", (ctx) => {
  const a = Key.of('Ahead', 'a');
  const b = Key.of('Ahead', 'b');
  const c = Key.of('Ahead', 'c');

  async function seeded(events: RpcEvent[]): Promise<Datastore> {
    const store = await ctx.connect({ projectId: uniqueProject('prefetch'), onRpc: (e) => events.push(e) });
    await store.save([Entity.from(a, { n: 1 }), Entity.from(b, { n: 2 }), Entity.from(c, { n: 3 })]);
    events.length = 0;
    return store;
  }

  const lookups = (events: RpcEvent[]) => events.filter((e) => e.method === 'lookup').map((e) => e.keys);

  it('answers later whole reads of those keys from one request, with copies a caller may change', async () => {
    const events: RpcEvent[] = [];
    const store = await seeded(events);
    const missing = Key.of('Ahead', 'none');
    await store.transaction(async (tx) => {
      tx.prefetch([a, b, missing]);
      const [first, gone] = await Promise.all([tx.get(a), tx.get(missing)]);
      expect(gone).toBeUndefined();
      first!.set('n', 99);
      const [again, other] = await tx.lookup([a, b]);
      expect([again?.get('n'), other?.get('n')]).toEqual([1, 2]);
      // A key not fetched ahead is read by itself; a masked read is never answered from whole entities.
      expect((await tx.lookup([a, c])).map((e) => e?.get('n'))).toEqual([1, 3]);
      expect((await tx.lookup([b], ['n']))[0]?.get('n')).toBe(2);
      tx.upsert(first!);
    });
    expect(lookups(events)).toEqual([3, 1, 1]);
    expect((await store.get(a))?.get('n')).toBe(99);
  });

  it('fails the reads that use a prefetch whose request failed, and nothing else', async () => {
    const store = await seeded([]);
    const bad = Key.of('Ahead', 'x', { namespace: 'bad namespace!' });
    await expect(
      store.transaction(
        async (tx) => {
          tx.prefetch([bad]);
          await tx.get(bad);
        },
        { attempts: 1 },
      ),
    ).rejects.toThrow(/namespace/i);
    // A transaction that fails before it reads what it fetched ahead: its own error, and no unhandled rejection.
    const unhandled: unknown[] = [];
    const note = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', note);
    try {
      await expect(
        store.transaction(
          async (tx) => {
            tx.prefetch([bad, a]);
            throw new Error('gave up first');
          },
          { attempts: 1 },
        ),
      ).rejects.toThrow('gave up first');
      await new Promise((resolve) => setTimeout(resolve, 200));
    } finally {
      process.off('unhandledRejection', note);
    }
    expect(unhandled).toEqual([]);
  });
});

describeEachFlavour('transactions begun ahead (StoreOptions.beginAhead)', (ctx) => {
  /** Runs three increments one after another; returns, per transaction, whether its id came from a begin sent before it started. */
  async function increments(beginAhead: boolean, beforeEach: (i: number) => void = () => undefined): Promise<{ early: boolean[]; rollbacks: string[]; store: Datastore }> {
    const store = await ctx.connect({ projectId: uniqueProject('ahead'), beginAhead });
    const key = Key.of('Counter', 1);
    const log: string[] = [];
    const begunAt = new Map<string, number>();
    const rollbacks: string[] = [];
    const begin = store.beginTransaction.bind(store);
    const rollback = store.rollback.bind(store);
    jest.spyOn(store, 'beginTransaction').mockImplementation(async (readOnly?: boolean) => {
      const at = log.push('begin');
      const id = await begin(readOnly);
      begunAt.set(idOf(id), at);
      return id;
    });
    jest.spyOn(store, 'rollback').mockImplementation(async (id) => {
      rollbacks.push(idOf(id));
      await rollback(id);
    });
    const early: boolean[] = [];
    for (let i = 0; i < 3; i++) {
      beforeEach(i);
      const started = log.push(`start ${i}`);
      await store.transaction(async (tx) => {
        early.push(begunAt.get(idOf(tx.id))! < started);
        const n = Number((await tx.get(key))?.get('n') ?? 0);
        tx.upsert(Entity.from(key, { n: n + 1 }));
      });
    }
    expect((await store.get(key))?.get('n')).toBe(3);
    return { early, rollbacks, store };
  }

  afterEach(() => jest.restoreAllMocks());

  it('start each transaction after the first on one begun while the last ran, and roll the last one back on close', async () => {
    const { early, rollbacks, store } = await increments(true);
    expect(early).toEqual([false, true, true]);
    expect(rollbacks).toEqual([]);
    await store.close();
    expect(rollbacks).toHaveLength(1);
  });

  it('are not used without the option', async () => {
    expect((await increments(false)).early).toEqual([false, false, false]);
  });

  it('are rolled back rather than used once older than a few seconds', async () => {
    const now = Date.now.bind(Date);
    let skew = 0;
    jest.spyOn(Date, 'now').mockImplementation(() => now() + skew);
    const { early, rollbacks } = await increments(true, (i) => (skew = i === 2 ? 6_000 : 0));
    expect(early).toEqual([false, true, false]);
    expect(rollbacks).toHaveLength(1);
  });
});

describeEachFlavour("a run's lifecycle", (ctx) => {
  it('reads the lease, the run and the migration record in one request when it begins and completes a migration', async () => {
    const projectId = uniqueProject('rtt');
    const events: RpcEvent[] = [];
    const store = await ctx.connect({ projectId, onRpc: (e) => events.push(e) });
    await seedPeople(store, 30);
    events.length = 0;
    const app = tempApp({ 'migrations/0001_a.ts': migrationOf(incrementOp('a')) });
    const summary = await migrate({ store, graph: await loadGraph([{ app: 'default', dir: path.join(app, 'migrations') }]), executor: new LocalExecutor() });
    expect(summary.applied).toEqual(['default:0001_a']);
    expect(countOf(await personValues(store, 'a'), 1)).toBe(30);
    // Lease, run and record: the transition that begins the migration, and the one that completes its step and finishes it.
    const threeKeyReads = events.filter((e) => e.method === 'lookup' && e.transactional && e.keys === 3);
    expect(threeKeyReads).toHaveLength(2);
  });
});

describeEachFlavour("a store's concurrency", (ctx) => {
  it("bounds one call's requests, not concurrent calls: a transaction's read never waits for another's", async () => {
    // Each read is held 400 ms at the proxy: a read sent only once the other is answered arrives that much later.
    const proxy = await startProxy(ctx.host, { latencyMs: 400 });
    const store = await Datastore.connect({ emulatorHost: proxy.host, projectId: uniqueProject('fan-out'), concurrency: 1 });
    try {
      const answered: string[] = [];
      const read = (name: string) =>
        store.transaction(async (tx) => {
          await tx.get(Key.of('FanOut', name));
          answered.push(name);
        });
      const reads = Promise.all([read('a'), read('b')]);
      while ((proxy.counts().rpcs.Lookup ?? 0) < 2) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(answered).toEqual([]);
      await reads;

      // One call of more keys than a request holds still sends its requests one at a time.
      const before = proxy.counts().rpcs.Lookup ?? 0;
      const many = store.lookup(Array.from({ length: 2500 }, (_, i) => Key.of('FanOut', i + 1)));
      many.catch(() => undefined); // awaited below, unless an expectation fails first
      while ((proxy.counts().rpcs.Lookup ?? 0) === before) await new Promise((resolve) => setTimeout(resolve, 10));
      // The second request may go out only once the first is answered, 400 ms after it arrived.
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(proxy.counts().rpcs.Lookup).toBe(before + 1);
      await many;
      expect(proxy.counts().rpcs.Lookup).toBe(before + 3);
    } finally {
      await store.close();
      await proxy.stop();
    }
  });
});
