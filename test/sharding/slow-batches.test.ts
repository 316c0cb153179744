import { Entity, Key } from '../../src/datastore';
import { LocalExecutor } from '../../src/executors';
import { MapFunctionOnEntities } from '../../src/operations';
import { describeEachFlavour } from '../support/emulators';

const N = 130;

/**
 * 0.5 s per entity in one batch of 200 would keep a transaction open for 65 s, past the 60 s a
 * transaction may sit idle on Firestore (and its emulator). The batch must commit in time and carry
 * on smaller, rather than fail at the same batch on every re-run.
 */
describeEachFlavour('a map function that awaits 0.5 s per entity', (ctx) => {
  it('completes without a transaction timeout, every entity changed once', async () => {
    const store = await ctx.connect();
    await store.save(Array.from({ length: N }, (_, i) => Entity.from(Key.of('Slow', i + 1), { n: 0 })));
    const slow = new MapFunctionOnEntities(
      'Slow',
      async (e) => {
        await new Promise((r) => setTimeout(r, 500));
        e.set('n', Number(e.get('n')) + 1);
      },
      { batchSize: 200, shardCount: 1 },
    );
    const result = await new LocalExecutor({ concurrency: 1 }).runOperation({ store, job: { namespace: '', id: 'slow#0.0' }, operation: slow });
    expect(result).toMatchObject({ scanned: N, changed: N, failed: 0 });
    const values: number[] = [];
    for await (const e of store.query({ kind: 'Slow' })) values.push(Number(e.get('n')));
    expect(values).toEqual(Array(N).fill(1));
  }, 240_000);
});
