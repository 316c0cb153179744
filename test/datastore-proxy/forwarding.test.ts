import { Datastore, Entity } from '../../src/datastore';
import { startProxy } from '../support/datastore-proxy';
import { describeEachFlavour } from '../support/emulators';
import { rawClient } from '../support/raw-client';

describeEachFlavour('the Datastore proxy at 0 faults', (ctx) => {
  it('forwards every store operation faithfully, and HTTP/1 (the health check) too', async () => {
    const proxy = await startProxy(ctx.host);
    try {
      const direct = await ctx.connect();
      const viaProxy = await Datastore.connect({ emulatorHost: proxy.host, projectId: ctx.projectId });
      try {
        const people = Array.from({ length: 30 }, (_, i) => {
          const e = new Entity(viaProxy.key('Fwd', `p${i}`));
          e.set('n', i);
          e.set('big', 2n ** 60n + BigInt(i));
          return e;
        });
        await viaProxy.save(people);
        const keys = people.map((p) => p.key);
        const [viaRead, directRead] = await Promise.all([viaProxy.lookup(keys), direct.lookup(keys)]);
        expect(viaRead.map((e) => e?.toProto(ctx.projectId, ''))).toEqual(directRead.map((e) => e?.toProto(ctx.projectId, '')));
        expect(directRead.map((e) => e?.get('n'))).toEqual(people.map((_, i) => i));

        const collect = async (store: Datastore) => {
          const seen: string[] = [];
          for await (const e of store.query({ kind: 'Fwd' })) seen.push(`${e.key}=${String(e.get('n'))}`);
          return seen;
        };
        expect(await collect(viaProxy)).toEqual(await collect(direct));
        const keysVia: string[] = [];
        for await (const batch of viaProxy.keys({ kind: 'Fwd' })) keysVia.push(...batch.map(String));
        expect(keysVia).toHaveLength(30);

        await viaProxy.transaction(async (tx) => {
          const e = (await tx.get(keys[0]))!;
          e.set('n', 100);
          tx.upsert(e);
        });
        expect((await direct.get(keys[0]))?.get('n')).toBe(100);
        const [allocated] = await viaProxy.allocateIds(viaProxy.key('Fwd'), 1);
        expect(allocated.id).toBeDefined();
        await viaProxy.delete([keys[1]]);
        expect(await direct.get(keys[1])).toBeUndefined();
        expect(await viaProxy.count({ kind: 'Fwd' })).toEqual(await direct.count({ kind: 'Fwd' }));

        // The official client's own calls, through the proxy.
        const official = rawClient(proxy.host, ctx.projectId);
        const [lookup] = await official.lookup({ projectId: ctx.projectId, keys: [keys[2].toProto(ctx.projectId, '')] });
        expect(lookup.found).toHaveLength(1);
        await official.close();

        const health = await fetch(`http://${proxy.host}/`);
        expect((await health.text()).trim()).toBe('Ok');
        expect(proxy.counts().totalInjected).toBe(0);
        expect(proxy.counts().rpcs.Commit).toBeGreaterThanOrEqual(3);
      } finally {
        await viaProxy.close();
      }
    } finally {
      await proxy.stop();
    }
  });
});
