import type { Key } from '../datastore';
import type { ShardWork } from './work';

/**
 * How many of the pending keys (in key order) the next transaction takes: at most `maxSize`, and, where
 * the backend limits the entity groups of a transaction, no more root entities than the limit allows
 * once the checkpoint's own group is counted. Related keys (a copy's target) count too, as their root
 * may differ from the source's. Always at least one key, so a shard cannot stall.
 */
export function batchLength(pending: readonly Key[], work: ShardWork, maxSize: number, groupLimit: number | null | undefined): number {
  const size = Math.min(pending.length, maxSize);
  if (groupLimit === null || groupLimit === undefined) return size;
  const groups = new Set<string>();
  const budget = groupLimit - 1; // the checkpoint's group
  for (let i = 0; i < size; i++) {
    const roots = [pending[i], ...work.relatedKeys(pending[i])].map((k) => k.root.toString());
    const added = roots.filter((r) => !groups.has(r));
    if (i > 0 && groups.size + new Set(added).size > budget) return i;
    for (const r of added) groups.add(r);
  }
  return size;
}
