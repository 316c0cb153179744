import { Entity, Key, type Datastore } from '../../src/datastore';
import { IMAGE_KIND, markImagesKept, pruneBeforeImages } from '../../src/sharding';
import { markKey } from '../../src/sharding/undo-data';
import { describeEachFlavour, uniqueProject } from '../support/emulators';

const NAMESPACES = ['', 'tenant-b'];
/** Per operation and namespace. */
const N = 120;
const NOW = new Date('2030-01-01T00:00:00Z');
const HOUR = 3_600_000;

/**
 * Images of two operations in each namespace: all of `m#0` expired, every third of `m#1` (spread over its key
 * range, so that each of several ranges holds some of each). Only the key name and `expiresAt` matter to a prune.
 */
async function seed(store: Datastore): Promise<{ expired: Set<string>; kept: Set<string> }> {
  const expired = new Set<string>();
  const kept = new Set<string>();
  for (const namespace of NAMESPACES) {
    for (const operation of ['default:0001_m#0', 'default:0001_m#1']) {
      await markImagesKept(store, operation, [namespace]);
      const images = Array.from({ length: N }, (_, i) => {
        const gone = operation.endsWith('#0') || i % 3 === 0;
        const key = Key.of(IMAGE_KIND, `${operation}|${String(i).padStart(4, '0')}`, { namespace });
        (gone ? expired : kept).add(key.toString());
        return Entity.from(key, { operation, expiresAt: new Date(NOW.getTime() + (gone ? -HOUR : HOUR)) });
      });
      await store.save(images);
    }
  }
  return { expired, kept };
}

async function imageKeys(store: Datastore): Promise<Set<string>> {
  const out = new Set<string>();
  for (const namespace of NAMESPACES) for await (const keys of store.keys({ kind: IMAGE_KIND, namespace })) for (const key of keys) if (!key.name!.endsWith('|~')) out.add(key.toString());
  return out;
}

async function prunedAt(store: Datastore, operation: string): Promise<(Date | undefined)[]> {
  const marks = await store.lookup(NAMESPACES.map((namespace) => markKey(operation, namespace)));
  return marks.map((m) => (m?.get('prunedAt') instanceof Date ? (m.get('prunedAt') as Date) : undefined));
}

describeEachFlavour('undo prune, sharded', (ctx) => {
  it('removes only the expired images, across several key ranges a few at a time, and marks their operations pruned; a dry run counts and removes nothing', async () => {
    const store = await ctx.connect({ projectId: uniqueProject('prune') });
    const { expired, kept } = await seed(store);

    const dry = await pruneBeforeImages(store, NAMESPACES, { now: NOW, dryRun: true, shardCount: 4 });
    expect({ expired: dry.expired, operations: dry.operations }).toEqual({ expired: expired.size, operations: ['default:0001_m#0', 'default:0001_m#1'] });
    expect(await imageKeys(store)).toEqual(new Set([...expired, ...kept]));
    expect(await prunedAt(store, 'default:0001_m#0')).toEqual([undefined, undefined]);

    const pruned = await pruneBeforeImages(store, NAMESPACES, { now: NOW, shardCount: 4 });
    expect(pruned.expired).toBe(expired.size);
    expect(pruned.shards).toBeGreaterThanOrEqual(2 * NAMESPACES.length);
    expect(await imageKeys(store)).toEqual(kept);
    for (const operation of ['default:0001_m#0', 'default:0001_m#1']) expect(await prunedAt(store, operation)).toEqual([NOW, NOW]);

    expect(await pruneBeforeImages(store, NAMESPACES, { now: NOW, shardCount: 4 })).toMatchObject({ expired: 0, operations: [] });
  });

  it('a prune killed midway is finished by the next, and marked pruned before anything was removed', async () => {
    const store = await ctx.connect({ projectId: uniqueProject('prunek') });
    const { expired, kept } = await seed(store);
    let deletes = 0;
    // The store as a prune sees it, killed at its second delete.
    const killed = new Proxy(store, {
      get(target, name) {
        if (name === 'delete')
          return async (keys: readonly Key[]) => {
            if (++deletes > 1) throw new Error('killed');
            await target.delete(keys);
          };
        const value: unknown = Reflect.get(target, name, target);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    await expect(pruneBeforeImages(killed, NAMESPACES, { now: NOW, shardCount: 4 })).rejects.toThrow('killed');
    const left = await imageKeys(store);
    expect(left.size).toBeLessThan(expired.size + kept.size);
    expect([...expired].some((k) => left.has(k))).toBe(true);
    expect((await prunedAt(store, 'default:0001_m#0'))[0]).toEqual(NOW);

    await pruneBeforeImages(store, NAMESPACES, { now: NOW, shardCount: 4 });
    expect(await imageKeys(store)).toEqual(kept);
  });
});
