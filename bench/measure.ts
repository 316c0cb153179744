// One measurement in its own process, so that its peak RSS is its own. Prints one JSON line.
// Usage: measure.ts <a|b|o|t|c|w|r|u> <kind> <field> [entities]   (connection from DATASTORE_EMULATOR_HOST / DATASTORE_PROJECT_ID)
import { readFileSync } from 'node:fs';
import type { Key as HighLevelKey } from '@google-cloud/datastore';
import { Datastore, Entity, Key } from '../src/datastore';
import { LocalExecutor } from '../src/executors';
import { jobRef } from '../src/control';
import { AddFieldData, RemoveFieldData } from '../src/operations';

export type Mode = 'a' | 'b' | 'o' | 't' | 'c' | 'w' | 'r' | 'u';

export interface Measurement {
  mode: Mode;
  entities: number;
  ms: number;
  peakRssMb: number;
  /** CPU time of the process (user + system), start-up included. */
  cpuSeconds?: number;
}

/** Entity `i` (from 0) of the seeded kind; (w) writes these again, with the new field. */
export function benchEntity(kind: string, i: number): Entity {
  return Entity.from(Key.of(kind, i + 1), { n: i, name: `person-${i}`, email: `person${i}@example.com`, score: i % 100 });
}

/** Batched upserts at most this many at once: the bulk script's backpressure. */
const WRITES_IN_FLIGHT = 8;
/** Entities per query of the bulk script: a bounded page, continued after its last key. */
const BULK_PAGE = 50_000;

/** Saves batches with at most WRITES_IN_FLIGHT in flight; `add` waits while the window is full. */
function writeWindow<T>(save: (batch: T[]) => Promise<unknown>): { add(batch: T[]): Promise<void>; drain(): Promise<void> } {
  const pending = new Set<Promise<unknown>>();
  return {
    async add(batch) {
      while (pending.size >= WRITES_IN_FLIGHT) await Promise.race(pending);
      const write = save(batch).finally(() => pending.delete(write));
      pending.add(write);
    },
    async drain() {
      await Promise.all(pending);
    },
  };
}

/** The kernel's high-water mark of this process's resident memory. */
function peakRssMb(): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return match ? Number(match[1]) / 1024 : process.memoryUsage().rss / 1048576;
}

/** (a) The framework: AddFieldData through the in-process executor, with its defaults (planning included). */
async function framework(kind: string, field: string): Promise<number> {
  const store = await Datastore.connect();
  const result = await new LocalExecutor().runOperation({ store, job: { namespace: '', id: `bench:${kind}:${field}` }, operation: new AddFieldData(kind, field, { default: 'blue' }) });
  await store.close();
  return result.changed;
}

/**
 * (r) RemoveFieldData of a field every entity has, through the in-process executor; (u) the same keeping
 * before-images (`undo: true`): one more write per changed entity, in the batch's transaction.
 */
async function removeField(kind: string, field: string, undo: boolean): Promise<number> {
  const store = await Datastore.connect();
  const result = await new LocalExecutor().runOperation({ store, job: jobRef('', `bench:${kind}`, 0, 0), operation: new RemoveFieldData(kind, field, { undo }) });
  await store.close();
  return result.changed;
}

/**
 * (b) A bulk script: queries of BULK_PAGE entities in key order, each continued after the last key and
 * read while the previous page is written, batched upserts with at most WRITES_IN_FLIGHT in flight, no
 * transactions. Bounded, so that a kind of any size fits in memory (one query for the whole kind held
 * 3.5 GB at a million entities).
 */
async function bulk(kind: string, field: string): Promise<number> {
  const store = await Datastore.connect({ concurrency: WRITES_IN_FLIGHT });
  const n = await rewriteInPages(
    async (after?: Key) => {
      const entities: Entity[] = [];
      for await (const batch of store.queryBatches({ kind, after, orderByKey: true, limit: BULK_PAGE })) for (const entity of batch) entities.push(entity);
      return entities;
    },
    (entity) => entity.key,
    (batch) => store.save(batch.map((entity) => entity.set(field, 'blue'))),
  );
  await store.close();
  return n;
}

/**
 * The bulk scripts' loop: pages of BULK_PAGE, each continued after the last key and read while the
 * previous page is written, in batches of 500 with at most WRITES_IN_FLIGHT in flight. Returns the entities rewritten.
 */
async function rewriteInPages<E, K>(page: (after?: K) => Promise<E[]>, keyOf: (entity: E) => K, write: (batch: E[]) => Promise<unknown>): Promise<number> {
  const window = writeWindow(write);
  let next: Promise<E[]> | undefined = page();
  let n = 0;
  while (next) {
    const entities: E[] = await next;
    next = entities.length === BULK_PAGE ? page(keyOf(entities[entities.length - 1])) : undefined;
    for (let i = 0; i < entities.length; i += 500) await window.add(entities.slice(i, i + 500));
    n += entities.length;
  }
  await window.drain();
  return n;
}

/**
 * (o) The bulk script as people write it with the official client (@google-cloud/datastore): the same
 * pages of BULK_PAGE in key order, each read while the previous one is written, and upserts of 500 with
 * at most WRITES_IN_FLIGHT in flight. The client turns every entity into a plain object and back, and
 * drops what it cannot carry (index exclusions it did not see, integers past 2^53).
 */
async function officialBulk(kind: string, field: string): Promise<number> {
  const { Datastore: HighLevelDatastore, PropertyFilter } = await import('@google-cloud/datastore');
  const datastore = new HighLevelDatastore({ projectId: process.env.DATASTORE_PROJECT_ID });
  const keyOf = (entity: Record<string | symbol, unknown>) => entity[datastore.KEY] as HighLevelKey;
  return rewriteInPages(
    async (after?: HighLevelKey) => {
      let query = datastore.createQuery(kind).order('__key__').limit(BULK_PAGE);
      if (after) query = query.filter(new PropertyFilter('__key__', '>', after));
      return (await datastore.runQuery(query))[0] as Record<string | symbol, unknown>[];
    },
    keyOf,
    (batch) => datastore.upsert(batch.map((entity) => ({ key: keyOf(entity), data: { ...entity, [field]: 'blue' } }))),
  );
}

/**
 * (t) The careful script on the official client, as a user who must lose no update writes it: the keys
 * in key-range pages of BULK_PAGE, and each batch of 500 in a transaction (lookup, set, upsert, commit),
 * at most WRITES_IN_FLIGHT transactions in flight. A batch whose commit aborts (contention) is retried.
 */
async function officialCareful(kind: string, field: string): Promise<number> {
  const { Datastore: HighLevelDatastore, PropertyFilter } = await import('@google-cloud/datastore');
  const datastore = new HighLevelDatastore({ projectId: process.env.DATASTORE_PROJECT_ID });
  const inTransaction = async (keys: HighLevelKey[]): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      const transaction = datastore.transaction();
      try {
        await transaction.run();
        const [entities] = await transaction.get(keys);
        transaction.upsert((entities as Record<string | symbol, unknown>[]).map((entity) => ({ key: entity[datastore.KEY] as HighLevelKey, data: { ...entity, [field]: 'blue' } })));
        await transaction.commit();
        return;
      } catch (error) {
        await transaction.rollback().catch(() => undefined);
        if ((error as { code?: number }).code !== 10 || attempt >= 5) throw error;
      }
    }
  };
  return rewriteInPages(
    async (after?: HighLevelKey) => {
      let query = datastore.createQuery(kind).select('__key__').order('__key__').limit(BULK_PAGE);
      if (after) query = query.filter(new PropertyFilter('__key__', '>', after));
      return ((await datastore.runQuery(query))[0] as Record<string | symbol, unknown>[]).map((entity) => entity[datastore.KEY] as HighLevelKey);
    },
    (key) => key,
    inTransaction,
  );
}

/** (w) Writes only: the same entities with the new field, upserted as (b) does, nothing read. What a read-modify-write cannot beat. */
async function writesOnly(kind: string, field: string, entities: number): Promise<number> {
  const store = await Datastore.connect({ concurrency: WRITES_IN_FLIGHT });
  const window = writeWindow((batch: Entity[]) => store.save(batch));
  for (let start = 0; start < entities; start += 500) {
    const batch: Entity[] = [];
    for (let i = start; i < Math.min(entities, start + 500); i++) batch.push(benchEntity(kind, i).set(field, 'blue'));
    await window.add(batch);
  }
  await window.drain();
  await store.close();
  return entities;
}

/**
 * (c) The loop people write: pages of limit(500) continued by cursor, an upsert per page, with the
 * high-level client. Stopped after `max` entities: each page's query costs time in proportion to the
 * kind's size on this emulator, so the whole run is extrapolated from the pages measured.
 */
async function handWritten(kind: string, field: string, max: number): Promise<number> {
  const { Datastore: HighLevelDatastore } = await import('@google-cloud/datastore');
  const datastore = new HighLevelDatastore({ projectId: process.env.DATASTORE_PROJECT_ID });
  let cursor: string | undefined;
  let n = 0;
  while (n < max) {
    let query = datastore.createQuery(kind).limit(500);
    if (cursor) query = query.start(cursor);
    const [entities, info] = await datastore.runQuery(query);
    const writes = (entities as Record<string | symbol, unknown>[]).map((entity) => ({ key: entity[datastore.KEY] as HighLevelKey, data: { ...entity, [field]: 'blue' } }));
    if (writes.length > 0) await datastore.upsert(writes);
    n += entities.length;
    if (info.moreResults === 'NO_MORE_RESULTS' || entities.length === 0) break;
    cursor = info.endCursor;
  }
  return n;
}

async function main(): Promise<void> {
  const [mode, kind, field, max] = process.argv.slice(2);
  const started = performance.now();
  const run: Record<Mode, () => Promise<number>> = {
    a: () => framework(kind, field),
    b: () => bulk(kind, field),
    o: () => officialBulk(kind, field),
    t: () => officialCareful(kind, field),
    c: () => handWritten(kind, field, Number(max)),
    w: () => writesOnly(kind, field, Number(max)),
    r: () => removeField(kind, field, false),
    u: () => removeField(kind, field, true),
  };
  const entities = await run[mode as Mode]();
  const ms = performance.now() - started;
  const cpu = process.cpuUsage();
  const result: Measurement = { mode: mode as Mode, entities, ms, peakRssMb: peakRssMb(), cpuSeconds: (cpu.user + cpu.system) / 1e6 };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (require.main === module)
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  });
