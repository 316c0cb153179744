import type { Key } from '../datastore';
import { uniqueFieldsFor, type ShardWork } from './work';

/**
 * What writes add to a commit: mutations (entities, their unique markers), estimated bytes, and entity
 * groups beyond those the transaction read.
 */
export interface CommitCost {
  mutations: number;
  bytes: number;
  groups: number;
}

/** What one commit may hold besides its checkpoint. */
export interface CommitBudget {
  mutations: number;
  bytes: number;
}

/**
 * How many of the pending keys (in key order) the next transaction takes: at most `maxSize`; no more than
 * the budget holds at `perKey`, what a key cost the last commit on average (only deciding an entity tells
 * what it writes, so the last batch is the best guess, and the transaction cuts its batch where the guess
 * falls short); and, where the backend limits the entity groups of a transaction, no more root entities
 * than the limit allows once the checkpoint's own group and the groups a key's writes added are counted.
 * Related keys (a copy's target) count too, as their root may differ from the source's. Always at least
 * one key, so a shard cannot stall.
 */
export function batchLength(pending: readonly Key[], work: ShardWork, maxSize: number, groupLimit: number | null | undefined, expected?: { perKey: CommitCost; budget: CommitBudget }): number {
  const fit = expected ? Math.max(1, Math.min(keysWithin(expected.budget.mutations, expected.perKey.mutations), keysWithin(expected.budget.bytes, expected.perKey.bytes))) : Infinity;
  const size = Math.min(pending.length, maxSize, fit);
  if (groupLimit === null || groupLimit === undefined) return size;
  // Groups a key's writes add besides those read; before any commit taught it, a before-image is one per key
  // and so is a unique field's marker (each its own root): reads alone may otherwise fill the limit.
  const written = expected?.perKey.groups ?? (work.undo ? 1 : 0) + (uniqueFieldsFor(work, work.kind)?.fields.length ?? 0);
  const groups = new Set<string>();
  const budget = groupLimit - 1; // the checkpoint's group
  for (let i = 0; i < size; i++) {
    const roots = [pending[i], ...work.relatedKeys(pending[i])].map((k) => k.root.toString());
    const added = roots.filter((r) => !groups.has(r));
    if (i > 0 && groups.size + new Set(added).size + written * (i + 1) > budget) return i;
    for (const r of added) groups.add(r);
  }
  return size;
}

function keysWithin(budget: number, perKey: number): number {
  return perKey > 0 ? Math.floor(budget / perKey) : Infinity;
}
