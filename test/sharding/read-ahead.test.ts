import path from 'node:path';
import { Entity, Key, type Datastore, type RpcEvent } from '../../src/datastore';
import { LocalExecutor } from '../../src/executors';
import { loadGraph, migrate, type Executor } from '../../src/migrations';
import { AddFieldData } from '../../src/operations';
import { cutFromStream, KeyReadAhead, type CutPage } from '../../src/sharding';
import { tempApp } from '../support/cli';
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

  /** A migrate of a fresh migration, counting the queries sent before the executor was asked to run the job, and in all. */
  async function run(readAhead: boolean): Promise<{ before: number; writesBefore: number; total: number; colours: unknown[] }> {
    const events: RpcEvent[] = [];
    const store = await ctx.connect({ projectId: uniqueProject('ahead'), onRpc: (e) => events.push(e) });
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
    const summary = await migrate({ store, graph, executor });
    expect(summary.applied).toEqual(['default:0001_colour']);
    const colours: unknown[] = [];
    for await (const e of store.query({ kind: 'Person' })) colours.push(e.get('colour'));
    return { before, writesBefore, total: queries(), colours };
  }

  it('starts the key stream before the job is laid out, and reads no key twice', async () => {
    const without = await run(false);
    const ahead = await run(true);
    expect(without.colours).toEqual(Array(N).fill('blue'));
    expect(ahead.colours).toEqual(Array(N).fill('blue'));
    // Where shards are cut from the stream, its first page (and the `__kind__` probe) went out before the job
    // ran; elsewhere only the probe did, which the splitter asks once per store anyway.
    expect(ahead.before).toBe(without.before + (streams ? 2 : 1));
    // The property-mask probe (non-transactional writes of a probe entity) was sent before the job ran too.
    expect(ahead.writesBefore).toBeGreaterThan(without.writesBefore);
    // The page read ahead is the cut's first page: the stream is not read again.
    expect(ahead.total).toBe(without.total);
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
