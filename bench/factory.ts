/**
 * Cost of ModelFactory.get: served from the cache (the fast path) and validated against Datastore
 * (one lookup). `npx tsx bench/factory.ts` starts its own Firestore-mode emulator; `npm run bench --
 * --factory` calls runFactoryBench against the bench's emulator.
 */
import { performance } from 'node:perf_hooks';
import { startDatastoreEmulator } from '../emulator/datastore-emulator';
import { Datastore, type RpcMethod, type StoreOptions } from '../src/datastore';
import { DEFAULT_STALENESS_MS, ModelFactory, type DefinitionInput } from '../src/dynamic';

export interface FactoryBenchOptions {
  /** Where to connect (emulatorHost, projectId); definitions go to the namespace `bench-factory`. */
  connection: StoreOptions;
  /** Awaited gets timed on the fast path. Default 2,000,000. */
  cachedGets?: number;
  /** Gets timed with stalenessMs 0, each one lookup. Default 300. */
  validatedGets?: number;
}

export interface FactoryBenchResult {
  /** Awaited gets per second with every get served from the cache. */
  cachedGetsPerSecond: number;
  cachedGetNs: number;
  /** Awaited gets per second in a tight loop under the default bound, its periodic lookups included. */
  defaultBoundGetsPerSecond: number;
  /** Mean, median and 99th percentile of a get that checks the stored hash (stalenessMs 0). */
  validatedGetMs: number;
  validatedGetP50Ms: number;
  validatedGetP99Ms: number;
  lookupsPerValidatedGet: number;
  queriesPerValidatedGet: number;
  /** One uncontended update: a lookup, then a transaction inserting the next version. */
  updateMs: number;
}

const DEFINITION: DefinitionInput = {
  name: 'BenchSurvey',
  fields: [
    { name: 'title', type: 'string', default: '' },
    { name: 'score', type: 'double', nullable: true },
    { name: 'tags', type: 'array', items: { type: 'string' }, default: [] },
    { name: 'answers', type: 'json', nullable: true },
  ],
};

export async function runFactoryBench(options: FactoryBenchOptions): Promise<FactoryBenchResult> {
  const cachedGets = options.cachedGets ?? 2_000_000;
  const validatedGets = options.validatedGets ?? 300;
  const rpcs = new Map<RpcMethod, number>();
  const store = await Datastore.connect({ ...options.connection, onRpc: (e) => rpcs.set(e.method, (rpcs.get(e.method) ?? 0) + 1) });
  try {
    const namespace = 'bench-factory';
    const writer = new ModelFactory(store, { namespace, register: false });
    await writer.define(DEFINITION);
    const updateStart = performance.now();
    await writer.update(DEFINITION.name, (d) => ({ fields: [...d.fields, { name: `extra${d.version}`, type: 'boolean', default: false }] }));
    const updateMs = performance.now() - updateStart;

    const cached = new ModelFactory(store, { namespace, stalenessMs: 3_600_000, register: false });
    const cachedNs = await timeLoop(cached, cachedGets);

    const defaultBound = new ModelFactory(store, { namespace, register: false });
    const defaultNs = await timeLoop(defaultBound, Math.min(cachedGets, 500_000));

    const validated = new ModelFactory(store, { namespace, stalenessMs: 0, register: false });
    await validated.get(DEFINITION.name);
    rpcs.clear();
    const times: number[] = [];
    for (let i = 0; i < validatedGets; i++) {
      const start = performance.now();
      await validated.get(DEFINITION.name);
      times.push(performance.now() - start);
    }
    times.sort((a, b) => a - b);
    return {
      cachedGetsPerSecond: Math.round(1e9 / cachedNs),
      cachedGetNs: round(cachedNs),
      defaultBoundGetsPerSecond: Math.round(1e9 / defaultNs),
      validatedGetMs: round(times.reduce((a, b) => a + b, 0) / times.length),
      validatedGetP50Ms: round(times[Math.floor(times.length / 2)]),
      validatedGetP99Ms: round(times[Math.min(times.length - 1, Math.floor(times.length * 0.99))]),
      lookupsPerValidatedGet: (rpcs.get('lookup') ?? 0) / validatedGets,
      queriesPerValidatedGet: ((rpcs.get('runQuery') ?? 0) + (rpcs.get('runAggregationQuery') ?? 0)) / validatedGets,
      updateMs: round(updateMs),
    };
  } finally {
    await store.close();
  }
}

/** Nanoseconds per awaited get, after a warm-up that lets the JIT settle. */
async function timeLoop(factory: ModelFactory, count: number): Promise<number> {
  const name = DEFINITION.name;
  for (let i = 0; i < Math.min(count, 100_000); i++) await factory.get(name);
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) await factory.get(name);
  return Number(process.hrtime.bigint() - start) / count;
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}

export function formatFactoryBench(result: FactoryBenchResult): string {
  const rows: [string, string][] = [
    ['cached get', `${result.cachedGetsPerSecond.toLocaleString('en-US')} gets/s (${result.cachedGetNs} ns each; target ≥ 1,000,000/s)`],
    [`get, default bound (${DEFAULT_STALENESS_MS} ms)`, `${result.defaultBoundGetsPerSecond.toLocaleString('en-US')} gets/s in a tight loop, checks included`],
    ['validated get', `${result.validatedGetMs} ms mean, ${result.validatedGetP50Ms} ms p50, ${result.validatedGetP99Ms} ms p99`],
    ['RPCs per validated get', `${result.lookupsPerValidatedGet} lookup, ${result.queriesPerValidatedGet} queries`],
    ['update (uncontended)', `${result.updateMs} ms`],
  ];
  const width = Math.max(...rows.map(([label]) => label.length));
  return rows.map(([label, value]) => `${label.padEnd(width)}  ${value}`).join('\n');
}

if (require.main === module) {
  void (async () => {
    const emulator = await startDatastoreEmulator({ flavour: 'firestore' });
    try {
      const result = await runFactoryBench({ connection: { emulatorHost: emulator.host, projectId: 'bench-factory' } });
      console.log(`ModelFactory on the Firestore-mode emulator (Node ${process.version})\n${formatFactoryBench(result)}`);
    } finally {
      await emulator.stop();
    }
  })().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
