import { Key } from '../datastore';

/**
 * A shard's slice of one namespace's key space: keys k with `start <= k < end`. A missing bound is
 * open, so the first and last shards also cover keys lower or higher than any key seen when splitting.
 * Ranges bounded by what another job committed (key-set.ts) may exclude their start or include their end.
 */
export interface KeyRange {
  namespace: string;
  start?: Key;
  end?: Key;
  startExclusive?: boolean;
  endInclusive?: boolean;
}

export function inRange(range: KeyRange, key: Key): boolean {
  const fromStart = range.start === undefined ? 1 : Key.compare(key, range.start);
  const toEnd = range.end === undefined ? -1 : Key.compare(key, range.end);
  return (range.startExclusive ? fromStart > 0 : fromStart >= 0) && (range.endInclusive ? toEnd <= 0 : toEnd < 0);
}

/** Up to `shards - 1` distinct, evenly spaced split points from a sample of keys (in any order). */
export function pickSplitPoints(sample: readonly Key[], shards: number): Key[] {
  const sorted = [...sample].sort(Key.compare);
  const points: Key[] = [];
  for (let i = 1; i < shards && sorted.length > 0; i++) {
    // Never index 0: a split at the lowest sampled key would leave the first shard (nearly) empty.
    const index = Math.max(1, Math.round((i * sorted.length) / shards));
    if (index >= sorted.length) break;
    const candidate = sorted[index];
    // A point equal to the previous one would make an empty shard.
    if (points.length === 0 || Key.compare(candidate, points[points.length - 1]) > 0) points.push(candidate);
  }
  return points;
}

/** Consecutive ranges between sorted split points, open at both ends. */
export function rangesBetween(namespace: string, points: readonly Key[], start?: Key, end?: Key): KeyRange[] {
  const bounds: (Key | undefined)[] = [start, ...points, end];
  const ranges: KeyRange[] = [];
  for (let i = 0; i + 1 < bounds.length; i++) ranges.push({ namespace, start: bounds[i], end: bounds[i + 1] });
  return ranges;
}
