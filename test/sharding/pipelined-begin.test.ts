import { Entity, Key, type RpcEvent } from '../../src/datastore';
import { LocalExecutor } from '../../src/executors';
import { MapFunctionOnEntities } from '../../src/operations';
import { describeEachFlavour, uniqueProject } from '../support/emulators';

const N = 50;

describeEachFlavour("a shard's batches", (ctx) => {
  it('begin each next transaction while the last commits, and every entity is changed once', async () => {
    const events: RpcEvent[] = [];
    const store = await ctx.connect({ projectId: uniqueProject('pipe'), onRpc: (e) => events.push(e) });
    await store.save(Array.from({ length: N }, (_, i) => Entity.from(Key.of('Piped', i + 1), { n: 0 })));
    events.length = 0;
    const increment = new MapFunctionOnEntities('Piped', (e) => void e.set('n', Number(e.get('n')) + 1), { batchSize: 10, shardCount: 1 });
    const result = await new LocalExecutor({ concurrency: 1 }).runOperation({ store, job: { namespace: '', id: 'pipe#0.0' }, operation: increment });
    expect(result).toMatchObject({ scanned: N, changed: N });
    const values: number[] = [];
    for await (const e of store.query({ kind: 'Piped' })) values.push(Number(e.get('n')));
    expect(values).toEqual(Array(N).fill(1));
    // In order, the begins and the transactional reads and commits: without the early begin each begin is followed by its
    // transaction's read; with it, each batch but the last begins the next one's transaction just before it commits.
    const calls = events.filter((e) => e.method === 'beginTransaction' || (e.transactional && (e.method === 'lookup' || e.method === 'commit'))).map((e) => e.method);
    const commits = calls.filter((m) => m === 'commit').length;
    expect(commits).toBeGreaterThanOrEqual(N / 10);
    expect(calls.filter((m, i) => m === 'beginTransaction' && calls[i + 1] === 'commit').length).toBeGreaterThanOrEqual(N / 10 - 1);
    // The last batch begins none it would not use: nothing is rolled back.
    expect(events.some((e) => e.method === 'rollback')).toBe(false);
  });

  it('still commit when the early begin failed: the store begins again', async () => {
    const store = await ctx.connect({ projectId: uniqueProject('pipe-fail') });
    const key = Key.of('Piped', 1);
    await store.transaction(async (tx) => tx.upsert(Entity.from(key, { n: 1 })), { begun: Promise.reject(new Error('refused')) });
    expect((await store.get(key))?.get('n')).toBe(1);
  });
});
