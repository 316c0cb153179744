// One measurement in its own process, so that its peak RSS is its own. Prints one JSON line.
// Usage: measure.ts <a|b|c> <kind> <field> [maxEntities]   (connection from DATASTORE_EMULATOR_HOST / DATASTORE_PROJECT_ID)
import { readFileSync } from 'node:fs';
import { Datastore as HighLevelDatastore, type Key } from '@google-cloud/datastore';
import { Datastore } from '../src/datastore';
import { LocalExecutor } from '../src/executors';
import { AddFieldData } from '../src/operations';

export interface Measurement {
  mode: 'a' | 'b' | 'c';
  entities: number;
  ms: number;
  peakRssMb: number;
  /** CPU time of this process (user + system). */
  cpuSeconds: number;
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

/** (b) A bulk script: one query streaming every entity, batched upserts in parallel, no transactions. */
async function bulk(kind: string, field: string): Promise<number> {
  const store = await Datastore.connect({ concurrency: 8 });
  const writes: Promise<void>[] = [];
  let n = 0;
  for await (const batch of store.queryBatches({ kind })) {
    for (const entity of batch) entity.set(field, 'blue');
    n += batch.length;
    writes.push(store.save(batch));
  }
  await Promise.all(writes);
  await store.close();
  return n;
}

/**
 * (c) The loop people write: pages of limit(500) continued by cursor, an upsert per page, with the
 * high-level client. Stopped after `max` entities: each page's query costs time in proportion to the
 * kind's size on this emulator, so the whole run is extrapolated from the pages measured.
 */
async function handWritten(kind: string, field: string, max: number): Promise<number> {
  const datastore = new HighLevelDatastore({ projectId: process.env.DATASTORE_PROJECT_ID });
  let cursor: string | undefined;
  let n = 0;
  while (n < max) {
    let query = datastore.createQuery(kind).limit(500);
    if (cursor) query = query.start(cursor);
    const [entities, info] = await datastore.runQuery(query);
    const writes = (entities as Record<string | symbol, unknown>[]).map((entity) => ({ key: entity[datastore.KEY] as Key, data: { ...entity, [field]: 'blue' } }));
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
  const entities = mode === 'a' ? await framework(kind, field) : mode === 'b' ? await bulk(kind, field) : await handWritten(kind, field, Number(max));
  const ms = performance.now() - started;
  const cpu = process.cpuUsage();
  const result: Measurement = { mode: mode as Measurement['mode'], entities, ms, peakRssMb: peakRssMb(), cpuSeconds: (cpu.user + cpu.system) / 1e6 };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
