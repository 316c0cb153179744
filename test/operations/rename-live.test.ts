import { Entity, Key, type Datastore } from '../../src/datastore';
import { LocalExecutor } from '../../src/executors';
import { defineModel, field } from '../../src/model';
import { CopyFieldData, RemoveFieldData, type Operation } from '../../src/operations';
import { describeEachFlavour } from '../support/emulators';

const N = 200;
const keys = Array.from({ length: N }, (_, i) => Key.of('Pal', i + 1));

/** During the copy the app runs with the rename declared (saves write both names); after it, with the rename complete. */
const During = defineModel('Pal', { displayName: field.string({ renamedFrom: 'nickname' }), n: field.integer() });
const Done = defineModel('Pal', { displayName: field.string({ renamedFrom: { name: 'nickname', complete: true } }), n: field.integer() });

/** An application that keeps saving through the model until stopped; remembers the last value it saved per key. */
function writer(store: Datastore, model: typeof During, latest: Map<string, string>): { stop: () => Promise<number> } {
  let running = true;
  let saves = 0;
  const loop = (async () => {
    while (running) {
      const key = keys[Math.floor(Math.random() * N)];
      const value = `w${saves}`;
      await store.transaction(async (tx) => {
        const stored = await tx.get(key);
        if (!stored) throw new Error(`${key} is gone`);
        const loaded = model.fromEntity(stored);
        loaded.values.displayName = value;
        tx.upsert(model.toEntity(loaded));
      });
      latest.set(key.toString(), value);
      saves++;
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return saves;
    },
  };
}

const run = (store: Datastore, operation: Operation, id: string) => new LocalExecutor({ concurrency: 2 }).runOperation({ store, job: { namespace: '', id }, operation });

/** Seed 003's Rename Field playbook with the library keeping the old field in step: no write of the application is lost. */
describeEachFlavour('a rename run while the application keeps saving through the model', (ctx) => {
  it('leaves every entity with its latest value under the new name only', async () => {
    const store = await ctx.connect();
    await store.save(keys.map((key, i) => Entity.from(key, { nickname: `old${i}`, n: i })));
    const latest = new Map(keys.map((key, i) => [key.toString(), `old${i}`]));

    const app = writer(store, During, latest);
    await run(store, new CopyFieldData('Pal', 'nickname', 'displayName', { batchSize: 10 }), 'copy#0.0');
    const during = await app.stop();

    const app2 = writer(store, Done, latest);
    await run(store, new RemoveFieldData('Pal', 'nickname', { batchSize: 10 }), 'remove#0.0');
    const after = await app2.stop();
    expect(during + after).toBeGreaterThan(0);

    const found = await store.lookup(keys);
    expect(found.filter(Boolean)).toHaveLength(N);
    for (const entity of found) {
      expect({ key: entity!.key.toString(), displayName: entity!.get('displayName'), nickname: entity!.has('nickname') }).toEqual({
        key: entity!.key.toString(),
        displayName: latest.get(entity!.key.toString()),
        nickname: false,
      });
    }
  });
});
