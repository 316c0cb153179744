import { Datastore, Entity, grpcCode, GrpcCode, type Key } from '../../src/datastore';
import { DsMigrateError } from '../../src/errors';
import { startProxy, useDatastoreProxy } from '../support/datastore-proxy';
import { describeEachFlavour } from '../support/emulators';

/** Short backoffs: the faults are many and the test is meant to take seconds. */
const FAST_RETRY = { baseDelayMs: 5, maxDelayMs: 50 };

describeEachFlavour('the store under 5% Datastore faults of every kind', (ctx) => {
  const proxy = useDatastoreProxy(() => ctx.host, { faultFraction: 0.05, seed: 2024 });
  let store: Datastore;
  beforeAll(async () => {
    store = await Datastore.connect({ emulatorHost: proxy().host, projectId: ctx.projectId, retry: FAST_RETRY });
  });
  afterAll(async () => {
    await store.close();
  });

  it('saves, looks up and queries exactly', async () => {
    const keys = Array.from({ length: 120 }, (_, i) => store.key('UnderFaults', `e${String(i).padStart(3, '0')}`));
    for (let i = 0; i < keys.length; i += 6) await store.save(keys.slice(i, i + 6).map((key, j) => new Entity(key).set('n', i + j)));
    for (let round = 0; round < 10; round++) {
      expect((await store.lookup(keys)).map((e) => e?.get('n'))).toEqual(keys.map((_, i) => i));
      const seen: string[] = [];
      for await (const batch of store.keys({ kind: 'UnderFaults' })) seen.push(...batch.map((k) => k.name!));
      expect(seen).toEqual(keys.map((k) => k.name));
    }
    await store.delete(keys.slice(0, 60));
    expect((await store.lookup(keys)).filter(Boolean)).toHaveLength(60);
    expect(proxy().counts().totalInjected).toBeGreaterThan(0);
  });

  it('N read-modify-write increments in concurrent transactions, each idempotent by construction, leave the counters at exactly N', async () => {
    // Several writers per counter on the classic emulator (optimistic: a conflict costs a retry); one per
    // counter on the Firestore one, which settles two transactions holding one entity by a lock timeout of seconds.
    const writersPerCounter = ctx.flavour === 'classic' ? 2 : 1;
    const counters = Array.from({ length: 6 }, (_, i) => store.key('UnderFaultsCounter', `c${i}`));
    const perWriter = 20;
    // The increment and a marker of its own id commit together: a retry after an unknown outcome finds the marker and adds nothing.
    const increment = (counter: Key, id: string) =>
      store.transaction(async (tx) => {
        const markerKey = store.key('UnderFaultsIncrement', id);
        const [current, marker] = await tx.lookup([counter, markerKey]);
        if (marker) return;
        tx.upsert(new Entity(counter).set('n', Number(current?.get('n') ?? 0) + 1));
        tx.insert(new Entity(markerKey).set('at', new Date()));
      });
    const writer = async (counter: Key, w: number) => {
      for (let i = 0; i < perWriter; i++) await increment(counter, `${counter.name}-${w}-${i}`);
    };
    await Promise.all(counters.flatMap((counter) => Array.from({ length: writersPerCounter }, (_, w) => writer(counter, w))));
    const values = (await (await ctx.connect()).lookup(counters)).map((e) => e?.get('n'));
    expect(values).toEqual(counters.map(() => perWriter * writersPerCounter));
    // Which codes met the commits depends on the order in which concurrent RPCs reach the proxy; the tests
    // below inject after-commit faults alone, for certain.
    expect(Object.values(proxy().counts().injected.Commit ?? {}).reduce((n, c) => n + c, 0)).toBeGreaterThan(0);
  });
});

describeEachFlavour('a transaction whose commit outcome is unknown', (ctx) => {
  /** Sequential naive increments through a proxy that answers a quarter of the commits with an error after applying them. */
  async function naiveIncrements(name: string, unknownOutcome?: 'retry' | 'fail') {
    const proxy = await startProxy(ctx.host, { faultFraction: 0.25, faultShares: { 'deadline-after-commit': 1, 'unavailable-after-commit': 1 }, seed: 9 });
    const store = await Datastore.connect({ emulatorHost: proxy.host, projectId: ctx.projectId, retry: FAST_RETRY });
    const counter = store.key('NaiveCounter', name);
    let succeeded = 0;
    const unknown: DsMigrateError[] = [];
    try {
      for (let i = 0; i < 20; i++) {
        try {
          await store.transaction(async (tx) => {
            const current = await tx.get(counter);
            tx.upsert(new Entity(counter).set('n', Number(current?.get('n') ?? 0) + 1));
          }, unknownOutcome && { unknownOutcome });
          succeeded++;
        } catch (error) {
          if (!(error instanceof DsMigrateError)) throw error;
          unknown.push(error);
        }
      }
      const value = Number((await (await ctx.connect()).get(counter))?.get('n'));
      return { succeeded, unknown, value, injected: proxy.counts().totalInjected };
    } finally {
      await store.close();
      await proxy.stop();
    }
  }

  it('is retried by default, so a read-modify-write that is not idempotent is applied twice', async () => {
    const { succeeded, value, injected } = await naiveIncrements('default');
    expect(succeeded).toBe(20);
    expect(injected).toBeGreaterThan(0);
    // Each injected fault followed an applied commit, which the retry applied once more.
    expect(value).toBe(20 + injected);
  });

  it("fails cleanly with COMMIT_OUTCOME_UNKNOWN under { unknownOutcome: 'fail' }, and is never applied twice", async () => {
    const { succeeded, unknown, value, injected } = await naiveIncrements('fail', 'fail');
    expect(unknown.length).toBe(injected);
    expect(unknown.length).toBeGreaterThan(0);
    for (const error of unknown) {
      expect(error.code).toBe('COMMIT_OUTCOME_UNKNOWN');
      expect(error.message).toMatch(/may or may not have been applied/);
    }
    expect(succeeded + unknown.length).toBe(20);
    // Here every unknown outcome was in fact applied (the proxy answered after the commit).
    expect(value).toBe(20);
  });

  it('rolls back a transaction whose commit failed, so that its locks do not stall the next one', async () => {
    const proxy = await startProxy(ctx.host, { faultFraction: 1, faultMethods: ['Commit'], faultShares: { 'deadline-exceeded': 1 } });
    const store = await Datastore.connect({ emulatorHost: proxy.host, projectId: ctx.projectId, retry: { attempts: 1 } });
    try {
      const key = store.key('RolledBack', 'k');
      const error = await store
        .transaction(async (tx) => {
          const current = await tx.get(key);
          tx.upsert(new Entity(key).set('n', Number(current?.get('n') ?? 0) + 1));
        })
        .catch((e: unknown) => e);
      expect(grpcCode(error)).toBe(GrpcCode.DEADLINE_EXCEEDED);
      expect(proxy.counts().rpcs).toEqual({ BeginTransaction: 1, Lookup: 1, Commit: 1, Rollback: 1 });
      const direct = await ctx.connect();
      await direct.transaction(
        async (tx) => {
          tx.upsert(new Entity(key).set('n', Number((await tx.get(key))?.get('n') ?? 0) + 1));
        },
        { attempts: 1 },
      );
      expect((await direct.get(key))?.get('n')).toBe(1);
    } finally {
      await store.close();
      await proxy.stop();
    }
  });
});
