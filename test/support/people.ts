import { Entity, Key, type Datastore } from '../../src/datastore';

/** Migrations over `Person` counters for the recovery tests, local (test/migrations) and through Cloud Tasks (test/worker). */

/** A migration file's text with these operations (as written by incrementOp and throwingAtOp). */
export const migrationOf = (...operations: string[]): string => `
import { defineMigration, MapFunctionOnEntities } from 'datastore-migrate';
export default defineMigration({ operations: [${operations.join(',')}] });
`;

/** Adds 1 to `field` on every Person; its declared reverse takes 1 away. `delayMs` per entity in the reverse makes a back-out slow enough to interrupt. */
export const incrementOp = (field: string, options = '{ batchSize: 25, shardCount: 2 }', reverseDelayMs = 0): string => `
  new MapFunctionOnEntities('Person', (p) => void p.set('${field}', Number(p.get('${field}') ?? 0) + 1), {
    reverse: async (p) => {
      ${reverseDelayMs ? `await new Promise((r) => setTimeout(r, ${reverseDelayMs}));` : ''}
      p.set('${field}', Number(p.get('${field}') ?? 0) - 1);
    },
    ...${options},
  })`;

/** Throws on one entity: with one shard, the batches before it are committed (a key prefix), the rest are not. */
export const throwingAtOp = (field: string, name: string): string => `
  new MapFunctionOnEntities('Person', (p) => {
    if (p.key.name === '${name}') throw new Error('cannot handle ${name}');
    p.set('${field}', Number(p.get('${field}') ?? 0) + 1);
  }, {
    reverse: (p) => void p.set('${field}', Number(p.get('${field}') ?? 0) - 1),
    batchSize: 25,
    shardCount: 1,
  })`;

/** `n` Persons, named (`p1`, `p3`, …) and numbered (2, 4, …) alternately. */
export async function seedPeople(store: Datastore, n: number, namespace = ''): Promise<void> {
  await store.save(Array.from({ length: n }, (_, i) => Entity.from(i % 2 ? Key.of('Person', i + 1, { namespace }) : Key.of('Person', `p${i + 1}`, { namespace }), { name: `n${i}` })));
}

/** Every Person's value of `field` (0 when missing, 1 for true), in key order; the length is the entity count. */
export async function personValues(store: Datastore, field: string, namespace = ''): Promise<number[]> {
  const out: number[] = [];
  for await (const e of store.query({ kind: 'Person', namespace })) out.push(Number(e.get(field) ?? 0));
  return out;
}

export const countOf = (values: readonly number[], v: number): number => values.filter((x) => x === v).length;
