import path from 'node:path';
import { Datastore, Entity, Key, type RpcEvent } from '../../src/datastore';
import { LocalExecutor } from '../../src/executors';
import { loadGraph, migrate, type Executor } from '../../src/migrations';
import { AddFieldData } from '../../src/operations';
import { cutFromStream, KeyReadAhead, type CutPage } from '../../src/sharding';
import { tempApp } from '../support/cli';
import { startProxy } from '../support/datastore-proxy';
import { describeEachFlavour, uniqueProject } from '../support/emulators';

const N = 120;

const ADD_COLOUR = `
import { defineMigration, AddFieldData } from 'datastore-migrate';
export default defineMigration({ operations: [new AddFieldData('Person', 'colour', { default: 'blue' })] });
`;

async function seed(store: Datastore): Promise<void> {
  await store.save(Array.from({ length: N }, (_, i) => Entity.from(Key.of('Person', i + 1), { n: i })));
}

async function pages(stream: AsyncIterable<CutPage>): Promise<{ shards: { range: string; keys: string[] }[]; next?: string }[]> {
  const out = [];
  for await (const page of stream) {
    out.push({ shards: page.shards.map((s) => ({ range: JSON.stringify(s.range), keys: [...s.keys].map(String) })), next: page.next?.toString() });
  }
  return out;
}

describeEachFlavour('reading the first job’s keys ahead', (ctx) => {
  const streams = ctx.flavour === 'firestore';

  /**
   * A migrate of a fresh migration, counting the queries sent before the run's first commit (taking the
   * lease), before the executor was asked to run the job, and in all. `latencyMs`: through the proxy.
   */
  async function run(readAhead: boolean, latencyMs?: number): Promise<{ beforeLease: number; before: number; writesBefore: number; total: number; colours: unknown[] }> {
    const events: RpcEvent[] = [];
    const proxy = latencyMs === undefined ? undefined : await startProxy(ctx.host, { latencyMs });
    const projectId = uniqueProject('ahead');
    const store = proxy ? await Datastore.connect({ emulatorHost: proxy.host, projectId, onRpc: (e) => events.push(e) }) : await ctx.connect({ projectId, onRpc: (e) => events.push(e) });
    await seed(store);
    const graph = await loadGraph([{ app: 'default', dir: path.join(tempApp({ 'migrations/0001_colour.ts': ADD_COLOUR }), 'migrations') }]);
    const local = new LocalExecutor({ pageKeys: 50 });
    let before = -1;
    let writesBefore = -1;
    const queries = () => events.filter((e) => e.method === 'runQuery').length;
    const executor: Executor = {
      runOperation: (request) => {
        before = queries();
        writesBefore = events.filter((e) => e.method === 'commit' && !e.transactional).length;
        return local.runOperation(request);
      },
      ...(readAhead ? { readAhead: (s: Datastore, operation: Parameters<LocalExecutor['readAhead']>[1]) => local.readAhead(s, operation) } : {}),
    };
    events.length = 0;
    try {
      const summary = await migrate({ store, graph, executor });
      expect(summary.applied).toEqual(['default:0001_colour']);
      const firstCommit = events.findIndex((e) => e.method === 'commit' && e.transactional);
      const beforeLease = events.slice(0, firstCommit).filter((e) => e.method === 'runQuery').length;
      const total = queries();
      const colours: unknown[] = [];
      for await (const e of store.query({ kind: 'Person' })) colours.push(e.get('colour'));
      return { beforeLease, before, writesBefore, total, colours };
    } finally {
      if (proxy) {
        await store.close();
        await proxy.stop();
      }
    }
  }

  it('starts the key stream before the job is laid out, and reads no key twice', async () => {
    const without = await run(false);
    const ahead = await run(true);
    expect(without.colours).toEqual(Array(N).fill('blue'));
    expect(ahead.colours).toEqual(Array(N).fill('blue'));
    // Where shards are cut from the stream, its first page (and the `__kind__` probe) went out before the job
    // ran; elsewhere only the probe did, which the splitter asks once per store anyway. One more query is the
    // records' list read ahead of the lease, to plan before it.
    expect(ahead.before).toBe(without.before + (streams ? 2 : 1) + 1);
    // The property-mask probe (non-transactional writes of a probe entity) was sent before the job ran too.
    expect(ahead.writesBefore).toBeGreaterThan(without.writesBefore);
    // The page read ahead is the cut's first page: the stream is not read again (the plan's records are).
    expect(ahead.total).toBe(without.total + 1);
  });

  it('plans from the records while the lease is taken, and starts reading keys before the lease is held', async () => {
    // At 100 ms a round trip, taking the lease (begin, read, commit) ends well after the records' list has
    // answered and the read-ahead's first query has gone out.
    const without = await run(false, 100);
    const ahead = await run(true, 100);
    expect(ahead.colours).toEqual(Array(N).fill('blue'));
    expect(without.beforeLease).toBe(0);
    // The records' list, then the `__kind__` probe the read-ahead starts with.
    expect(ahead.beforeLease).toBeGreaterThanOrEqual(2);
    expect(ahead.total).toBe(without.total + 1);
  });

  it('hands the cut the pages it would have read itself, once', async () => {
    const store = await ctx.connect({ projectId: uniqueProject('ahead-pages') });
    await seed(store);
    const operation = new AddFieldData('Person', 'colour', { default: 'blue' });
    const target = { kind: 'Person', namespace: '', filters: operation.filters };
    const cut = { pageKeys: 50, slots: 4 };
    const ahead = new KeyReadAhead(store, operation, cut);
    const taken = await ahead.take(store, operation, target, { ...cut });
    if (!streams) {
      // A backend with `__scatter__` splits by sample: there is no stream to read ahead.
      expect(taken).toBeUndefined();
      return;
    }
    expect(taken).toBeDefined();
    const expected = await pages(cutFromStream(store, target, undefined, cut));
    expect(expected.length).toBe(3);
    expect(await pages(taken!)).toEqual(expected);
    expect(await ahead.take(store, operation, target, cut)).toBeUndefined();
  });

  it('is let go when another job, page size, number of shards at once or namespace asks, or when its read failed', async () => {
    const store = await ctx.connect({ projectId: uniqueProject('ahead-other') });
    await seed(store);
    const operation = new AddFieldData('Person', 'colour', { default: 'blue' });
    const other = new AddFieldData('Person', 'colour', { default: 'blue' });
    const target = { kind: 'Person', namespace: '', filters: operation.filters };
    const cut = { pageKeys: 50 };
    expect(await new KeyReadAhead(store, operation, cut).take(store, other, target, cut)).toBeUndefined();
    expect(await new KeyReadAhead(store, operation, cut).take(store, operation, target, { pageKeys: 40 })).toBeUndefined();
    expect(await new KeyReadAhead(store, operation, cut).take(store, operation, target, { pageKeys: 50, slots: 8 })).toBeUndefined();
    expect(await new KeyReadAhead(store, operation, cut).take(store, operation, { ...target, namespace: 'elsewhere' }, cut)).toBeUndefined();
    const released = new KeyReadAhead(store, operation, cut);
    released.discard();
    expect(await released.take(store, operation, target, cut)).toBeUndefined();
    // A read that failed is no read: the cut reads the stream itself.
    const failing = { kind: 'Person', filters: operation.filters, scope: {}, namespaces: () => Promise.reject(new Error('unavailable')) };
    expect(await new KeyReadAhead(store, failing, cut).take(store, failing, target, cut)).toBeUndefined();
  });
});
