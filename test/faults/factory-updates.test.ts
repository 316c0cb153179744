import { Datastore, Key } from '../../src/datastore';
import { DEFINITION_KIND, ModelFactory } from '../../src/dynamic';
import { DEFINITION_VERSION_KIND } from '../../src/dynamic/store';
import { isDsMigrateError } from '../../src/errors';
import { useDatastoreProxy } from '../support/datastore-proxy';
import { describeEachFlavour } from '../support/emulators';
import { expectEveryFault, FAST_RETRY, FAULTS, missingFaults } from './support';

const MODELS = ['Form', 'Survey', 'Poll'];
const UPDATERS = 4;
/** Updates per updater, model and round. Rounds go on until the proxy has answered every fault code (at most MAX_ROUNDS). */
const EACH = 4;
const MAX_ROUNDS = 12;

/**
 * Concurrent updates of one stored definition through 5% faults of every kind. The compare-and-set inserts
 * the next version: an insert whose commit landed but answered an error must be recognised as this writer's
 * own, neither reported as a conflict nor written again.
 */
describeEachFlavour('concurrent model-factory updates under Datastore faults', (ctx) => {
  const proxy = useDatastoreProxy(() => ctx.host, FAULTS);

  it('lose no update: every field added, every version written once, each by the writer told it wrote it', async () => {
    const namespace = 'factory-faults';
    const stores = await Promise.all([0, 1].map(() => Datastore.connect({ emulatorHost: proxy().host, projectId: ctx.projectId, retry: FAST_RETRY })));
    try {
      const factories = Array.from({ length: UPDATERS }, (_, u) => new ModelFactory(stores[u % 2], { namespace, stalenessMs: 0, register: false, updatedBy: `u${u}` }));
      const direct = await ctx.connect();
      let conflicts = 0;
      const claims = new Map(MODELS.map((model) => [model, [] as { version: number; hash: string; by: string }[]]));
      const added: string[] = [];
      for (const model of MODELS) await factories[0].define({ name: model, kind: `${model}Entry`, fields: [{ name: 'title', type: 'string', default: 'x' }] });
      for (let round = 0; round < MAX_ROUNDS && (round === 0 || missingFaults(proxy()).length > 0); round++) {
        await Promise.all(
          MODELS.flatMap((model) =>
            factories.map(async (factory, u) => {
              for (let i = 0; i < EACH; i++) {
                const name = `r${round}u${u}f${i}`;
                if (model === MODELS[0]) added.push(name);
                for (;;) {
                  try {
                    const { definition } = await factory.update(model, (d) => ({ fields: [...d.fields, { name, type: 'string', nullable: true }] }));
                    claims.get(model)!.push({ version: definition.version, hash: definition.hash, by: `u${u}` });
                    break;
                  } catch (error) {
                    if (!isDsMigrateError(error, 'CONFLICT')) throw error;
                    conflicts++;
                  }
                }
              }
            }),
          ),
        );
      }

      for (const model of MODELS) {
        const head = (await direct.get(Key.of(DEFINITION_KIND, model, { namespace })))!;
        const last = 1 + added.length;
        expect(Number(head.get('version'))).toBe(last);
        const fields = (await new ModelFactory(direct, { namespace, register: false }).getDefinition(model)).fields.map((f) => f.name);
        expect(fields.sort()).toEqual(['title', ...added].sort());
        // Each version from 2 on was claimed by exactly one writer, and is stored with that writer's hash and name.
        const mine = claims.get(model)!;
        expect(mine.map((c) => c.version).sort((a, b) => a - b)).toEqual(Array.from({ length: last - 1 }, (_, i) => i + 2));
        const versions = await direct.lookup(mine.map((c) => Key.of(DEFINITION_KIND, model, DEFINITION_VERSION_KIND, c.version, { namespace })));
        expect(versions.map((v) => [v?.get('hash'), v?.get('updatedBy')])).toEqual(mine.map((c) => [c.hash, c.by]));
      }
      expect(conflicts).toBeGreaterThan(0);
      expectEveryFault(proxy());
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });
});
