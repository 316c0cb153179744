import { useDatastoreProxy } from '../support/datastore-proxy';
import { runCli, tempApp } from '../support/cli';
import { describeEachFlavour } from '../support/emulators';
import { countOf, incrementOp, migrationOf, personValues, seedPeople } from '../support/people';
import { expectEveryFault, FAULTS, missingFaults } from './support';

const N = 200;
/** Forward and back-out cycles on the same data, until the proxy has answered every fault code. */
const MAX_ROUNDS = 4;

/** Like throwingAtOp (test/support/people.ts), in small batches: one shard, its batches before `name` committed, the rest not. */
const throwingAt = (field: string, name: string): string => `
  new MapFunctionOnEntities('Person', (p) => {
    if (p.key.name === '${name}') throw new Error('cannot handle ${name}');
    p.set('${field}', Number(p.get('${field}') ?? 0) + 1);
  }, {
    reverse: (p) => void p.set('${field}', Number(p.get('${field}') ?? 0) - 1),
    batchSize: 5,
    shardCount: 1,
  })`;

/**
 * A migration that fails halfway through its second operation, then a back-out to zero, both by
 * `dsmigrate migrate` through 5% Datastore faults of every kind: the back-out reverses the first operation
 * in full and the second over exactly its committed batches, so every counter ends at 0.
 */
describeEachFlavour('a back-out after a failure, under Datastore faults', (ctx) => {
  const proxy = useDatastoreProxy(() => ctx.host, FAULTS);

  it('reverses exactly what ran', async () => {
    const store = await ctx.connect();
    await seedPeople(store, N);
    const app = tempApp({ 'migrations/0001_ab.ts': migrationOf(incrementOp('a', '{ batchSize: 5, shardCount: 2 }'), throwingAt('b', 'p151')) });
    const env = { ...ctx.env(), DATASTORE_EMULATOR_HOST: proxy().host };

    for (let round = 0; round < MAX_ROUNDS && (round === 0 || missingFaults(proxy()).length > 0); round++) {
      const failed = await runCli(['migrate'], { cwd: app, env });
      expect(failed.code).toBe(1);
      expect(failed.stderr).toContain('cannot handle p151');
      const partial = await personValues(store, 'b');
      expect(countOf(partial, 1)).toBeGreaterThan(0);
      expect(countOf(partial, 1) + countOf(partial, 0)).toBe(N);
      expect(countOf(await personValues(store, 'a'), 1)).toBe(N);

      const back = await runCli(['migrate', 'zero', '--json'], { cwd: app, env });
      expect({ code: back.code, stderr: back.stderr }).toEqual({ code: 0, stderr: '' });
      for (const field of ['a', 'b']) expect(countOf(await personValues(store, field), 0)).toBe(N);
      const status = JSON.parse((await runCli(['status', '--json'], { cwd: app, env })).stdout) as { name: string; state: string }[];
      expect(status.map((r) => [r.name, r.state])).toEqual([['0001_ab', 'pending']]);
    }
    expectEveryFault(proxy());
  });
});
