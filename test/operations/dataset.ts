import { CONTROL_KINDS } from '../../src/control';
import { Entity, Key, type Datastore } from '../../src/datastore';
import type { FlavourContext } from '../support/emulators';
import { rawClient } from '../support/raw-client';

/** The namespaces the mixed datasets live in: the default one and a tenant. */
export const NAMESPACES = ['', 'tenant-b'] as const;
export const LONG_TEXT = 'é'.repeat(1000); // 2,000 bytes, unindexed

/**
 * The i-th key of a kind: integer ids and names at the root, and children (ids and names) under
 * `Org` ancestors one and two levels up, so every shard boundary and batch sees all four.
 */
export function mixedKey(kind: string, i: number, namespace: string): Key {
  switch (i % 4) {
    case 0:
      return Key.of(kind, i + 1, { namespace });
    case 1:
      return Key.of(kind, `p${i}`, { namespace });
    case 2:
      return Key.of('Org', `org${i % 40}`, kind, i + 1, { namespace });
    default:
      return Key.of('Org', (i % 40) + 1, 'Team', `t${i % 7}`, kind, `c${i}`, { namespace });
  }
}

/**
 * Seeds `count` entities of `kind` per namespace: `n` (the index), an email in mixed case, `nickname`
 * on every third, `colour: 'red'` already on every tenth, a long unindexed `bio` on every 50th,
 * `counter: 0`. Returns the keys.
 */
export async function seedMixed(store: Datastore, kind: string, perNamespace: Record<string, number>): Promise<Key[]> {
  const entities: Entity[] = [];
  for (const [namespace, count] of Object.entries(perNamespace)) {
    for (let i = 0; i < count; i++) {
      const values: Record<string, string | number> = { n: i, email: `User${i}@Example.COM`, counter: 0 };
      if (i % 3 === 0) values.nickname = `nick${i}`;
      if (i % 10 === 0) values.colour = 'red';
      if (i % 50 === 0) values.bio = LONG_TEXT;
      entities.push(Entity.from(mixedKey(kind, i, namespace), values, { excludeFromIndexes: ['bio'] }));
    }
  }
  await store.save(entities);
  return entities.map((e) => e.key);
}

/** Every entity of a kind in a namespace, by one query. */
export async function readKind(store: Datastore, kind: string, namespace = ''): Promise<Entity[]> {
  const out: Entity[] = [];
  for await (const batch of store.queryBatches({ kind, namespace })) out.push(...batch);
  return out;
}

/** Entities of the migration engine's own control kinds, to check that something wrote nothing. */
export async function controlEntities(store: Datastore): Promise<number> {
  let n = 0;
  for (const kind of Object.values(CONTROL_KINDS)) n += (await readKind(store, kind)).length;
  return n;
}

/** Datastore's version of each entity (it changes on every write), read with the raw client. */
export async function versions(ctx: FlavourContext, keys: readonly Key[]): Promise<Map<string, string>> {
  const client = rawClient(ctx.host, ctx.projectId);
  const out = new Map<string, string>();
  try {
    for (let i = 0; i < keys.length; i += 1000) {
      const [response] = await client.lookup({ projectId: ctx.projectId, keys: keys.slice(i, i + 1000).map((k) => k.toProto(ctx.projectId)) });
      for (const found of response.found ?? []) out.set(Key.fromProto(found.entity!.key!).toString(), String(found.version));
    }
  } finally {
    await client.close();
  }
  return out;
}
