import { grpc } from 'google-gax';
import { Datastore, Entity, grpcCode, GrpcCode } from '../../src/datastore';
import type { DatastoreProxy, InjectedCode } from '../../emulator/datastore-proxy';
import { startProxy } from '../support/datastore-proxy';
import { describeEachFlavour } from '../support/emulators';
import { rawClient } from '../support/raw-client';

const N = 40;
type Outcome = 'ok' | InjectedCode;

/** The code the proxy names in what it answers ("… (aborted injected into Lookup by …)"), or the status for other errors. */
function outcome(error: unknown): Outcome {
  if (error === undefined) return 'ok';
  const named = /\((\S+) injected into/.exec(String((error as { details?: string }).details ?? (error as Error).message));
  if (named) return named[1] as InjectedCode;
  throw error;
}

async function attempt(fn: () => Promise<unknown>): Promise<Outcome> {
  try {
    await fn();
    return 'ok';
  } catch (error) {
    return outcome(error);
  }
}

describeEachFlavour('the Datastore proxy injects faults', (ctx) => {
  /** N calls of each faulted RPC, one at a time, through a proxy seeded with `seed`: what each call met, and the proxy's counts. */
  async function run(seed: number, tag: string) {
    const proxy: DatastoreProxy = await startProxy(ctx.host, { faultFraction: 0.5, seed });
    const direct = await ctx.connect();
    // No retries: every injected fault must reach the caller.
    const store = await Datastore.connect({ emulatorHost: proxy.host, projectId: ctx.projectId, retry: { attempts: 1 } });
    const raw = rawClient(proxy.host, ctx.projectId);
    const seen: Record<string, Outcome[]> = { Lookup: [], RunQuery: [], BeginTransaction: [], Commit: [], Rollback: [] };
    const applied: boolean[] = [];
    try {
      await direct.save([new Entity(direct.key(`Fault${tag}`, 'one')).set('n', 1)]);
      for (let i = 0; i < N; i++) seen.Lookup.push(await attempt(() => store.lookup([store.key(`Fault${tag}`, 'one')])));
      for (let i = 0; i < N; i++) seen.RunQuery.push(await attempt(() => store.query({ kind: `Fault${tag}`, limit: 1 }).next()));
      for (let i = 0; i < N; i++) seen.BeginTransaction.push(await attempt(() => store.beginTransaction()));
      for (let i = 0; i < N; i++) {
        const key = store.key(`Fault${tag}`, `c${i}`);
        seen.Commit.push(await attempt(() => store.save([new Entity(key).set('i', i)])));
        applied.push((await direct.get(key)) !== undefined);
      }
      // The store swallows a rollback's failure (the transaction ends either way): the official client shows it.
      const ids = await Promise.all(Array.from({ length: N }, () => direct.beginTransaction()));
      for (const transaction of ids) seen.Rollback.push(await attempt(() => raw.rollback({ projectId: ctx.projectId, transaction }, { retry: null })));
      return { seen, applied, counts: proxy.counts() };
    } finally {
      await Promise.all([store.close(), raw.close()]);
      await proxy.stop();
    }
  }

  it('injects each code into each RPC type at the fraction, the same for the same seed, and an after-commit fault follows an applied commit', async () => {
    const first = await run(7, 'a');
    const again = await run(7, 'b');
    expect(again.seen).toEqual(first.seen);
    expect(again.counts).toEqual(first.counts);

    const before = ['aborted', 'unavailable', 'resource-exhausted', 'deadline-exceeded'];
    for (const [method, outcomes] of Object.entries(first.seen)) {
      const tally: Partial<Record<Outcome, number>> = {};
      for (const o of outcomes) if (o !== 'ok') tally[o] = (tally[o] ?? 0) + 1;
      // What the callers met is what the proxy counted.
      expect(first.counts.injected[method as keyof typeof first.counts.injected] ?? {}).toEqual(tally);
      expect(first.counts.rpcs[method as keyof typeof first.counts.rpcs]).toBeGreaterThanOrEqual(N);
      const faults = outcomes.filter((o) => o !== 'ok').length;
      expect(faults).toBeGreaterThan(N * 0.25);
      expect(faults).toBeLessThan(N * 0.75);
      const codes = method === 'Commit' ? [...before, 'deadline-after-commit', 'unavailable-after-commit'] : before;
      expect(Object.keys(tally).sort()).toEqual(codes.sort());
    }
    // A commit failed before it reached the emulator changed nothing; one failed after it did apply.
    first.seen.Commit.forEach((o, i) => expect({ o, applied: first.applied[i] }).toEqual({ o, applied: o === 'ok' || o.endsWith('-after-commit') }));
  });

  it('answers with the gRPC status each code stands for', async () => {
    const proxy = await startProxy(ctx.host, { faultFraction: 1, faultShares: { 'deadline-after-commit': 1 }, seed: 1 });
    try {
      const store = await Datastore.connect({ emulatorHost: proxy.host, projectId: ctx.projectId, retry: { attempts: 1 } });
      const key = store.key('FaultStatus', 'x');
      const error = await store.save([new Entity(key).set('v', 1)]).catch((e: unknown) => e);
      expect(grpcCode(error)).toBe(GrpcCode.DEADLINE_EXCEEDED);
      expect((await (await ctx.connect()).get(key))?.get('v')).toBe(1);
      // An after-commit code has nothing to follow on a lookup: the lookup goes through.
      expect(await store.lookup([key])).toHaveLength(1);
      await store.close();
    } finally {
      await proxy.stop();
    }
    const shares = { aborted: GrpcCode.ABORTED, unavailable: GrpcCode.UNAVAILABLE, 'resource-exhausted': GrpcCode.RESOURCE_EXHAUSTED, 'deadline-exceeded': GrpcCode.DEADLINE_EXCEEDED };
    for (const [code, status] of Object.entries(shares)) {
      const only = await startProxy(ctx.host, { faultFraction: 1, faultShares: { [code]: 1 } });
      try {
        const raw = rawClient(only.host, ctx.projectId);
        const error = await raw.beginTransaction({ projectId: ctx.projectId }, { retry: null }).catch((e: unknown) => e);
        expect(grpcCode(error)).toBe(status);
        expect((error as grpc.ServiceError).details).toContain('dsmigrate Datastore proxy');
        await raw.close();
      } finally {
        await only.stop();
      }
    }
  });

  it('adds the configured latency to every RPC', async () => {
    const proxy = await startProxy(ctx.host, { latencyMs: 40, latencyJitterMs: 20, seed: 3 });
    try {
      const store = await Datastore.connect({ emulatorHost: proxy.host, projectId: ctx.projectId });
      const key = store.key('Latency', 'x');
      await store.lookup([key]); // the connection's first call
      const started = performance.now();
      for (let i = 0; i < 5; i++) await store.lookup([key]);
      await store.save([new Entity(key).set('v', 1)]);
      // A lower bound only: a loaded machine may take longer, never shorter.
      expect(performance.now() - started).toBeGreaterThanOrEqual(6 * 40);
      await store.close();
    } finally {
      await proxy.stop();
    }
  });
});
