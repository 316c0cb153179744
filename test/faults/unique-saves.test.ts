import { Datastore } from '../../src/datastore';
import { UNIQUE_MARKER_KIND } from '../../src/model';
import { useDatastoreProxy } from '../support/datastore-proxy';
import { describeEachFlavour } from '../support/emulators';
import { Account } from '../model/support/account-model';
import { saveOne } from '../model/support/unique-saver';
import { expectEveryFault, FAST_RETRY, FAULTS, missingFaults, rawLookup } from './support';

const VALUES = 8;
const CONTENDERS = 4;
/**
 * Then each winner changes its value, one save after another (commits that move markers), at least MIN_CHANGES
 * times and on until the proxy has answered every fault code (at most MAX_CHANGES).
 */
const MIN_CHANGES = 10;
const MAX_CHANGES = 80;

/**
 * Concurrent saves of one unique value under different keys, through 5% faults of every kind: a save whose
 * commit landed but answered an error runs again, finds its own entity and marker, and succeeds; the others
 * find the winner's marker and fail with UNIQUE_VIOLATION.
 */
describeEachFlavour('concurrent unique saves under Datastore faults', (ctx) => {
  const proxy = useDatastoreProxy(() => ctx.host, FAULTS);

  it('let exactly one save of each value win, and leave exactly the markers of the values held after changes', async () => {
    const namespace = 'unique-faults';
    // Two connections: the race is between processes, not between calls sharing one client.
    const stores = await Promise.all([0, 1].map(() => Datastore.connect({ emulatorHost: proxy().host, projectId: ctx.projectId, retry: FAST_RETRY })));
    try {
      const winners: string[] = [];
      for (let v = 0; v < VALUES; v++) {
        const email = `v${v}@example.com`;
        const outcomes = await Promise.all(Array.from({ length: CONTENDERS }, (_, c) => saveOne(stores[c % 2], namespace, `v${v}-c${c}`, email)));
        expect(outcomes.map((o) => o.code).sort()).toEqual([...Array<string>(CONTENDERS - 1).fill('UNIQUE_VIOLATION'), 'ok']);
        winners.push(outcomes.find((o) => o.code === 'ok')!.id);
      }

      const finals = await Promise.all(
        winners.map(async (id, v) => {
          let n = 1;
          for (; n <= MAX_CHANGES && (n <= MIN_CHANGES || missingFaults(proxy()).length > 0); n++) {
            expect((await saveOne(stores[v % 2], namespace, id, `v${v}-${n}@example.com`)).code).toBe('ok');
          }
          return `v${v}-${n - 1}@example.com`;
        }),
      );

      // Straight from the emulator: the winners and nothing else, each holding its value, and one marker per value naming it.
      const direct = await ctx.connect();
      const accounts = await Account.query(direct, { namespace });
      expect(accounts.map((a) => a.key.name).sort()).toEqual([...winners].sort());
      const markers: string[] = [];
      for await (const m of direct.query({ kind: UNIQUE_MARKER_KIND, namespace })) markers.push(`${m.key.name} ${String(m.get('owner'))}`);
      expect(markers.sort()).toEqual(winners.map((id, v) => `Account|email|s:${finals[v]} ${Account.key(id, { namespace }).toString()}`).sort());
      const raw = await rawLookup(
        ctx.host,
        ctx.projectId,
        winners.map((id) => Account.key(id, { namespace })),
      );
      for (const [v, id] of winners.entries()) {
        const entity = [...raw.values()].find((e) => e.key!.path![0].name === id)!;
        expect(entity.properties!.email).toMatchObject({ stringValue: finals[v], excludeFromIndexes: false });
      }
      expectEveryFault(proxy());
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });
});
