import { Entity, Key, type Value } from '../datastore';
import { COUNT_NAMES, zeroCounts, type Counts, type Warnings } from './counts';
import type { KeyRange } from './ranges';

/**
 * A shard's checkpoint: one root entity per shard (kind `_dsmigrate_shard`, named `<runId>::<index>`,
 * default namespace), so each shard is its own entity group and shards never contend. It is written in
 * the same transaction as the batch it records: its range, the last key done, the counts, the
 * warnings and whether the shard is finished. A shard without one has not committed a batch yet.
 */
export const SHARD_KIND = '_dsmigrate_shard';

export interface ShardState extends KeyRange {
  runId: string;
  index: number;
  /** Every key of the range up to and including this one is done. */
  lastKey?: Key;
  counts: Counts;
  warnings: Warnings;
  done: boolean;
  /** The last failure, for `status`; cleared by the next committed batch. */
  error?: string;
}

export function shardKey(runId: string, index: number): Key {
  return Key.of(SHARD_KIND, `${runId}::${index}`);
}

export function freshShard(runId: string, index: number, range: KeyRange): ShardState {
  return { runId, index, namespace: range.namespace, start: range.start, end: range.end, counts: zeroCounts(), warnings: {}, done: false };
}

export function encodeShard(state: ShardState): Entity {
  const values: Record<string, Value> = {
    runId: state.runId,
    index: state.index,
    namespace: state.namespace,
    start: state.start ?? null,
    end: state.end ?? null,
    lastKey: state.lastKey ?? null,
    done: state.done,
    warnings: JSON.stringify(state.warnings),
    error: state.error ?? null,
    updatedAt: new Date(),
  };
  for (const name of COUNT_NAMES) values[name] = state.counts[name];
  return Entity.from(shardKey(state.runId, state.index), values, { excludeFromIndexes: ['start', 'end', 'lastKey', 'warnings', 'error'] });
}

export function decodeShard(entity: Entity): ShardState {
  const key = (name: string) => {
    const value = entity.get(name);
    return value instanceof Key ? value : undefined;
  };
  const counts = zeroCounts();
  for (const name of COUNT_NAMES) counts[name] = Number(entity.get(name) ?? 0);
  const error = entity.get('error');
  return {
    runId: String(entity.get('runId')),
    index: Number(entity.get('index')),
    namespace: String(entity.get('namespace') ?? ''),
    start: key('start'),
    end: key('end'),
    lastKey: key('lastKey'),
    counts,
    warnings: JSON.parse(String(entity.get('warnings') ?? '{}')) as Warnings,
    done: entity.get('done') === true,
    error: typeof error === 'string' ? error : undefined,
  };
}
