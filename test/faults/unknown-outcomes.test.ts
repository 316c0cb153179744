import { useDatastoreProxy } from '../support/datastore-proxy';
import { jsonEvents, runCli, tempApp } from '../support/cli';
import { describeEachFlavour } from '../support/emulators';
import { countOf, incrementOp, migrationOf, personValues, seedPeople } from '../support/people';

const N = 60;

/**
 * A third of the commits land and answer DEADLINE_EXCEEDED or UNAVAILABLE (an unknown outcome), and nothing
 * else fails: every transition of the run (the lease, the records, the run state) is retried after a commit
 * that did land, and must find its own write there rather than take itself for another actor.
 */
describeEachFlavour('a local run whose commits often answer an error after landing', (ctx) => {
  const proxy = useDatastoreProxy(() => ctx.host, {
    faultFraction: 0.3,
    faultMethods: ['Commit'],
    faultShares: { 'deadline-after-commit': 1, 'unavailable-after-commit': 1 },
    seed: 5,
  });

  it('reports every step done, records the migrations applied, lets go of its lease, and counts +1 exactly', async () => {
    const store = await ctx.connect();
    await seedPeople(store, N);
    const app = tempApp({
      'migrations/0001_a.ts': migrationOf(incrementOp('a', '{ batchSize: 10, shardCount: 2 }'), incrementOp('b', '{ batchSize: 10, shardCount: 2 }')),
      'migrations/0002_c.ts': migrationOf(incrementOp('c', '{ batchSize: 10, shardCount: 2 }')),
    });
    const env = { ...ctx.env(), DATASTORE_EMULATOR_HOST: proxy().host };

    const run = await runCli(['migrate', '--json'], { cwd: app, env });
    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: '' });
    const events = jsonEvents<{ event: string; migration?: string; operation?: number; state?: string }>(run);
    expect(events.filter((e) => e.event === 'operation-done').map((e) => [e.migration, e.operation])).toEqual([
      ['default:0001_a', 0],
      ['default:0001_a', 1],
      ['default:0002_c', 0],
    ]);
    expect(events.filter((e) => e.event === 'migration-done').map((e) => [e.migration, e.state])).toEqual([
      ['default:0001_a', 'applied'],
      ['default:0002_c', 'applied'],
    ]);
    for (const field of ['a', 'b', 'c']) expect(countOf(await personValues(store, field), 1)).toBe(N);

    // The lease was let go: another migrate gets it at once (exit 3 if it were still held) and has nothing to do.
    const again = await runCli(['migrate', '--json'], { cwd: app, env });
    expect({ code: again.code, stderr: again.stderr }).toEqual({ code: 0, stderr: '' });
    const status = JSON.parse((await runCli(['status', '--json'], { cwd: app, env })).stdout) as { name: string; state: string }[];
    expect(status.map((r) => [r.name, r.state])).toEqual([
      ['0001_a', 'applied'],
      ['0002_c', 'applied'],
    ]);
    expect(proxy().counts().injected.Commit?.['deadline-after-commit']).toBeGreaterThan(0);
    expect(proxy().counts().injected.Commit?.['unavailable-after-commit']).toBeGreaterThan(0);
  });
});
