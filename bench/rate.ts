/**
 * The write rate held against its limit: AddFieldData through the LocalExecutor with a rate, on the
 * wall clock. `npm run bench -- --rate N` calls runRateBench on a Firestore-mode emulator of its own.
 */
import { Datastore } from '../src/datastore';
import { LocalExecutor } from '../src/executors';
import { AddFieldData } from '../src/operations';
import { RAMP_STEP_MS, RATE_WINDOW_MS, RateLimiter, type Grant } from '../src/sharding';

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
  /** Entities over the run's whole wall time, planning included. */
  achieved: number;
  /** Entities over the time the limiter granted: from its first grant to the end. */
  whileWriting: number;
  /** Under a ramp, each 5-minute step: its limit and what was granted during it. */
  steps: { fromS: number; toS: number; limit: number; achieved: number }[];
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
    const ended = Date.now();
    const ms = ended - started;
    const grants = limiter?.grants ?? [];
    const firstGrant = grants[0]?.at ?? started;
    return {
      rate: options.rate,
      entities: result.scanned,
      ms,
      achieved: result.scanned / (ms / 1000),
      whileWriting: result.scanned / ((ended - firstGrant) / 1000),
      steps: options.rampUp && limiter ? rampSteps(limiter, grants, ended) : [],
      worstWindow: worstWindow(grants),
      budget: (options.rate * RATE_WINDOW_MS) / 1000,
      batches: grants.length,
    };
  } finally {
    await store.close();
  }
}

/** What was granted in each step of the ramp, timed from the ramp's start (the last step cut short by the end of the run). */
function rampSteps(limiter: RateLimiter, grants: readonly Grant[], ended: number): RateBenchResult['steps'] {
  const steps: RateBenchResult['steps'] = [];
  const start = limiter.rampFrom;
  for (let from = start; from < ended; from += RAMP_STEP_MS) {
    const to = Math.min(ended, from + RAMP_STEP_MS);
    const granted = grants.filter((g) => g.at >= from && g.at < to).reduce((n, g) => n + g.entities, 0);
    steps.push({ fromS: (from - start) / 1000, toS: (to - start) / 1000, limit: limiter.rateAt(from), achieved: granted / ((to - from) / 1000) });
  }
  return steps;
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
  const lines = [
    '| limit | entities | time | achieved (planning included) | while writing (first grant to end) | most in any 10 s | 10 s budget | batches |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    `| ${n(r.rate)}/s | ${n(r.entities)} | ${n(r.ms / 1000, 1)} s | ${n(r.achieved, 1)}/s (${n((100 * r.achieved) / r.rate)}%) | ${n(r.whileWriting, 1)}/s (${n((100 * r.whileWriting) / r.rate)}%) | ${n(r.worstWindow)} | ${n(r.budget)} | ${n(r.batches)} |`,
  ];
  if (r.steps.length > 0) {
    lines.push('', '| ramp step | limit | achieved |', '| --- | ---: | ---: |');
    for (const step of r.steps) lines.push(`| ${n(step.fromS)}–${n(step.toS)} s | ${n(step.limit)}/s | ${n(step.achieved, 1)}/s |`);
  }
  return lines.join('\n');
}
