import { Entity, Key, type Datastore, type RpcEvent } from '../../src/datastore';
import { LocalExecutor } from '../../src/executors';
import { MapFunctionOnEntities } from '../../src/operations';
import { describeEachFlavour } from '../support/emulators';

const N = 40;

async function count(store: Datastore, kind: string): Promise<number> {
  let n = 0;
  for await (const keys of store.keys({ kind })) n += keys.length;
  return n;
}

describeEachFlavour('a map function that writes other keys', (ctx) => {
  it('reads each other key inside the batch transaction before writing it', async () => {
    const events: RpcEvent[] = [];
    const store = await ctx.connect({ onRpc: (e) => events.push(e) });
    await store.save(Array.from({ length: N }, (_, i) => Entity.from(Key.of('Source', i + 1), { n: i })));
    const mirror = new MapFunctionOnEntities('Source', (e) => Entity.from(Key.of('Mirror', e.key.id!), { n: e.get('n') ?? null }), { batchSize: 10, shardCount: 1 });
    events.length = 0;
    const result = await new LocalExecutor({ concurrency: 1 }).runOperation({ store, job: { namespace: '', id: 'mirror#0.0' }, operation: mirror });
    expect(result).toMatchObject({ scanned: N, changed: N });
    expect(await count(store, 'Mirror')).toBe(N);
    expect(await count(store, 'Source')).toBe(N);
    // Each batch of 10 reads its 10 Mirror keys in its own transaction (its entities and checkpoint, 11
    // keys, go out as two other lookups of 6 and 5).
    const mirrorReads = events.filter((e) => e.method === 'lookup' && e.transactional && e.keys === 10);
    expect(mirrorReads).toHaveLength(N / 10);
  });

  it('refuses two writes of one key in one batch, naming the key, and writes nothing of that batch', async () => {
    const store = await ctx.connect();
    await store.save(Array.from({ length: N }, (_, i) => Entity.from(Key.of('Many', i + 1), { n: i })));
    const collide = new MapFunctionOnEntities('Many', (e) => Entity.from(Key.of('One', 'same'), { from: e.key.id! }), { batchSize: 10, shardCount: 1 });
    await expect(new LocalExecutor({ concurrency: 1 }).runOperation({ store, job: { namespace: '', id: 'collide#0.0' }, operation: collide })).rejects.toMatchObject({
      code: 'OPERATION_FAILED',
      message: expect.stringContaining('One:"same" twice in one batch'),
    });
    expect(await count(store, 'One')).toBe(0);
  });
});
