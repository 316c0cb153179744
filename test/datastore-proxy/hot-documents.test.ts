import { setTimeout as sleep } from 'node:timers/promises';
import { Datastore, Entity, grpcCode, GrpcCode } from '../../src/datastore';
import { startProxy } from '../support/datastore-proxy';
import { describeEachFlavour } from '../support/emulators';

describeEachFlavour('the Datastore proxy counts writes per entity', (ctx) => {
  it('reports an entity written more than once a second over the window, with its kind and namespace, and not those written once, or once a second', async () => {
    // A 2-second window instead of production's 10, to keep the test short.
    const proxy = await startProxy(ctx.host, { hotWindowSeconds: 2 });
    try {
      const store = await Datastore.connect({ emulatorHost: proxy.host, projectId: ctx.projectId });
      const hotKey = store.key('HotCounter', 'shared', { namespace: 'tenant-hot' });
      const until = Date.now() + 3100;
      let i = 0;
      for (; Date.now() < until; i++) {
        const batch = [new Entity(hotKey).set('n', i)];
        // Written once each, and once a second (ten rounds of at least 100 ms): neither is more than once a second.
        if (i % 4 === 0) batch.push(new Entity(store.key('Once', `c${i}`)).set('n', i));
        if (i % 10 === 0) batch.push(new Entity(store.key('Steady', 's')).set('n', i));
        await store.save(batch);
        await sleep(100);
      }
      const report = proxy.hotDocuments();
      expect(report).toEqual([
        { projectId: ctx.projectId, databaseId: '', namespace: 'tenant-hot', kind: 'HotCounter', path: 'HotCounter:"shared"', hot: true, writes: i, maxPerSecond: expect.any(Number), rejected: 0 },
      ]);
      expect(report[0].maxPerSecond).toBeGreaterThan(1);
      await store.close();
    } finally {
      await proxy.stop();
    }
  });

  it('answers ABORTED to writes of an entity beyond --hot-limit a second, before they reach the emulator', async () => {
    const proxy = await startProxy(ctx.host, { hotLimit: 3 });
    try {
      const store = await Datastore.connect({ emulatorHost: proxy.host, projectId: ctx.projectId, retry: { attempts: 1 } });
      const direct = await ctx.connect();
      const key = store.key('Limited', 'k');
      const other = store.key('Limited', 'other');
      const started = Date.now();
      const results: (number | 'ok')[] = [];
      for (let i = 0; i < 10; i++) {
        results.push(
          await store.save([new Entity(key).set('i', i), new Entity(other).set('i', i)]).then(
            () => 'ok' as const,
            (error: unknown) => grpcCode(error) ?? -1,
          ),
        );
      }
      const seconds = Math.ceil((Date.now() - started) / 1000);
      const accepted = results.filter((r) => r === 'ok').length;
      expect(results.filter((r) => r !== 'ok').every((r) => r === GrpcCode.ABORTED)).toBe(true);
      expect(accepted).toBeGreaterThanOrEqual(3);
      expect(accepted).toBeLessThanOrEqual(3 * seconds);
      expect(proxy.counts().injected.Commit?.['hot-limit']).toBe(10 - accepted);
      // A refused commit wrote nothing: the entity holds the last accepted write.
      const lastAccepted = results.lastIndexOf('ok');
      expect((await direct.get(key))?.get('i')).toBe(lastAccepted);
      expect((await direct.get(other))?.get('i')).toBe(lastAccepted);
      expect(proxy.hotDocuments().find((d) => d.path === 'Limited:"k"')).toMatchObject({ kind: 'Limited', rejected: 10 - accepted, writes: accepted });
      await store.close();
    } finally {
      await proxy.stop();
    }
  });
});
