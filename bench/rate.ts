/**
 * The write rate held against its limit: AddFieldData through the LocalExecutor with a rate, on the
 * wall clock. `npm run bench -- --rate N` calls runRateBench on a Firestore-mode emulator of its own.
 */
import { Datastore } from '../src/datastore';
import { LocalExecutor } from '../src/executors';
import { AddFieldData } from '../src/operations';
import { RATE_WINDOW_MS, RateLimiter, type Grant } from '../src/sharding';

export interface RateBenchOptions {
  connection: { emulatorHost: string; projectId: string };
  kind: string;
  rate: number;
  rampUp: boolean;
}

export interface RateBenchResult {
  rate: number;
  entities: number;
  ms: number;
  /** Entities over the run's wall time, first grant to end. */
  achieved: number;
  /** The most granted over any 10-second window, and that window's budget. */
  worstWindow: number;
  budget: number;
  batches: number;
}

export async function runRateBench(options: RateBenchOptions): Promise<RateBenchResult> {
  const store = await Datastore.connect({ ...options.connection, concurrency: 8 });
  try {
    let limiter: RateLimiter | undefined;
    const executor = new LocalExecutor({
      makeLimiter: (rate) => (limiter = new RateLimiter(rate)),
    });
    const started = Date.now();
    const result = await executor.runOperation({
      store,
      job: { namespace: 'bench-rate', id: `rate-${started}` },
      operation: new AddFieldData(options.kind, `rated${started}`, { default: 1, rate: { maxEntitiesPerSecond: options.rate, rampUp: options.rampUp } }),
    });
    const ms = Date.now() - started;
    const grants = limiter?.grants ?? [];
    return {
      rate: options.rate,
      entities: result.scanned,
      ms,
      achieved: result.scanned / (ms / 1000),
      worstWindow: worstWindow(grants),
      budget: (options.rate * RATE_WINDOW_MS) / 1000,
      batches: grants.length,
    };
  } finally {
    await store.close();
  }
}

function worstWindow(grants: readonly Grant[]): number {
  let worst = 0;
  let sum = 0;
  let first = 0;
  // Grants are in time order: a sliding sum over windows that start at a grant.
  for (let last = 0; last < grants.length; last++) {
    sum += grants[last].entities;
    while (grants[last].at - grants[first].at > RATE_WINDOW_MS) sum -= grants[first++].entities;
    worst = Math.max(worst, sum);
  }
  return worst;
}

export function formatRateBench(r: RateBenchResult): string {
  const n = (x: number, digits = 0) => x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
  return [
    '| limit | entities | time | achieved | most in any 10 s | 10 s budget | batches |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    `| ${n(r.rate)}/s | ${n(r.entities)} | ${n(r.ms / 1000, 1)} s | ${n(r.achieved, 1)}/s | ${n(r.worstWindow)} | ${n(r.budget)} | ${n(r.batches)} |`,
  ].join('\n');
}
