/** What a shard has done so far; every scanned entity ends up changed, deleted, skipped or failed. */
export interface Counts {
  scanned: number;
  changed: number;
  deleted: number;
  skipped: number;
  failed: number;
}

/**
 * A job's counts, the one shape counts take everywhere: summed over its shards' checkpoints while it runs,
 * kept on the run and the migration's record once its step completed, and extended (never reshaped) by
 * what a driver adds for its progress line or result.
 */
export interface JobCounts extends Counts {
  shardsTotal: number;
  shardsDone: number;
  /** Entities to scan, where the layout knows (shards cut from a fully read key stream). */
  estimatedTotal?: number;
}

export const COUNT_NAMES = ['scanned', 'changed', 'deleted', 'skipped', 'failed'] as const satisfies readonly (keyof Counts)[];

export function zeroCounts(): Counts {
  return { scanned: 0, changed: 0, deleted: 0, skipped: 0, failed: 0 };
}

/** A job that counted nothing: a step with nothing to do, or a step whose counts were never kept. */
export function zeroJobCounts(): JobCounts {
  return { ...zeroCounts(), shardsDone: 0, shardsTotal: 0 };
}

export function addCounts(into: Counts, delta: Counts): Counts {
  for (const name of COUNT_NAMES) into[name] += delta[name];
  return into;
}

/** Per-topic warnings: how many entities, and a few keys as examples. */
export type Warnings = Record<string, { count: number; examples: string[] }>;

const EXAMPLES = 5;

export function addWarning(into: Warnings, topic: string, key: string, count = 1): void {
  const entry = (into[topic] ??= { count: 0, examples: [] });
  entry.count += count;
  if (entry.examples.length < EXAMPLES && !entry.examples.includes(key)) entry.examples.push(key);
}

export function mergeWarnings(into: Warnings, from: Warnings): Warnings {
  for (const [topic, { count, examples }] of Object.entries(from)) {
    const entry = (into[topic] ??= { count: 0, examples: [] });
    entry.count += count;
    for (const e of examples) if (entry.examples.length < EXAMPLES && !entry.examples.includes(e)) entry.examples.push(e);
  }
  return into;
}

export function formatWarnings(warnings: Warnings): string[] {
  return Object.entries(warnings).map(([topic, { count, examples }]) => `${topic}: ${count} ${count === 1 ? 'entity' : 'entities'} (e.g. ${examples.join(', ')})`);
}
