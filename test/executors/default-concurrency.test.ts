import { Entity, Key } from '../../src/datastore';
import { DEFAULT_CONCURRENCY, LocalExecutor } from '../../src/executors';
import { MapFunctionOnEntities } from '../../src/operations';
import { describeEachFlavour } from '../support/emulators';

const SHARDS = 32;
const N = 1_600;

/**
 * How many shards run at once: every shard's function call waits until one more than `expected` calls are
 * waiting together, or `settleMs` has passed since the first came (the plan is made by then); the most that
 * waited together is the shards at once.
 */
function shardsAtOnce(expected: number, settleMs = 3_000): { fn: () => Promise<void>; most: () => number } {
  let waiting = 0;
  let most = 0;
  let release: (() => void) | undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let timer: NodeJS.Timeout | undefined;
  return {
    fn: async () => {
      timer ??= setTimeout(() => release!(), settleMs);
      most = Math.max(most, ++waiting);
      if (waiting > expected) {
        clearTimeout(timer);
        release!();
      }
      await gate;
      waiting--;
    },
    most: () => most,
  };
}

describeEachFlavour('LocalExecutor without a concurrency', (ctx) => {
  it(`runs ${DEFAULT_CONCURRENCY} shards at once, and every entity once`, async () => {
    expect(DEFAULT_CONCURRENCY).toBe(16);
    const store = await ctx.connect();
    await store.save(Array.from({ length: N }, (_, i) => Entity.from(Key.of('Wide', i + 1), { n: i })));
    const probe = shardsAtOnce(DEFAULT_CONCURRENCY);
    const result = await new LocalExecutor().runOperation({
      store,
      job: { namespace: '', id: 'wide#0.0' },
      operation: new MapFunctionOnEntities(
        'Wide',
        async (entity) => {
          await probe.fn();
          entity.set('seen', true);
        },
        { shardCount: SHARDS, batchSize: 10 },
      ),
    });
    expect(result.shardsTotal).toBeGreaterThan(DEFAULT_CONCURRENCY);
    expect(probe.most()).toBe(DEFAULT_CONCURRENCY);
    expect(result.changed).toBe(N);
    let seen = 0;
    for await (const entity of store.query({ kind: 'Wide' })) if (entity.get('seen') === true) seen++;
    expect(seen).toBe(N);
  });
});
