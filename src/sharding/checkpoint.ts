import { decodeJson, decodeStored, shardKey, type JobRef } from '../control';
import { Entity, type Key, type Value } from '../datastore';
import { COUNT_NAMES, zeroCounts, type Counts, type Warnings } from './counts';
import { decodeRange, encodeRange } from './job-layout';
import type { KeyRange } from './ranges';

/**
 * A shard's checkpoint: one root entity per shard (kind `_dsmigrate_shard`, named `<jobId>::<index>`,
 * in the control namespace), so each shard is its own entity group and shards never contend. It is
 * written in the same transaction as the batch it records: the last key done, the counts, the
 * warnings and whether the shard is finished. A shard without one has not committed a batch yet.
 * A `closed` shard belongs to a job that was folded into its operation's record (the direction
 * changed): any batch still in flight for it, from a run that lost its lease, commits nothing.
 */
export interface ShardState extends KeyRange {
  job: JobRef;
  index: number;
  /** Every key of the range up to and including this one is done. */
  lastKey?: Key;
  counts: Counts;
  warnings: Warnings;
  done: boolean;
  closed: boolean;
  /** The last failure, for `status`; cleared by the next committed batch. */
  error?: string;
  /**
   * The number of the shard's next slice where each slice runs in a task of its own (Cloud Tasks): the
   * slices that stopped with more to do and handed the shard on. Only that slice may run, so that a task
   * with another number cannot start a second chain of slices over the shard. Undefined in a checkpoint
   * written before slices were counted: then whichever slice comes is the next.
   */
  slices?: number;
}

export function freshShard(job: JobRef, index: number, range: KeyRange): ShardState {
  return { ...range, job, index, counts: zeroCounts(), warnings: {}, done: false, closed: false, slices: 0 };
}

export function encodeShard(state: ShardState): Entity {
  const values: Record<string, Value> = {
    jobId: state.job.id,
    index: state.index,
    range: JSON.stringify(encodeRange(state)),
    lastKey: state.lastKey ?? null,
    done: state.done,
    closed: state.closed,
    warnings: JSON.stringify(state.warnings),
    error: state.error ?? null,
    slices: state.slices ?? null,
    updatedAt: new Date(),
  };
  for (const name of COUNT_NAMES) values[name] = state.counts[name];
  return Entity.from(shardKey(state.job, state.index), values, { excludeFromIndexes: ['range', 'lastKey', 'warnings', 'error', 'slices'] });
}

export function decodeShard(entity: Entity): ShardState {
  const v = decodeStored(entity, {
    jobId: 'string',
    index: 'number',
    range: 'string',
    lastKey: 'key?',
    done: 'boolean',
    closed: 'boolean',
    warnings: 'string',
    error: 'string?',
    slices: 'number?',
    scanned: 'number',
    changed: 'number',
    deleted: 'number',
    skipped: 'number',
    failed: 'number',
  });
  const counts = zeroCounts();
  for (const name of COUNT_NAMES) counts[name] = v[name];
  return {
    ...decodeRange(decodeJson(entity, 'range', v.range, (r) => typeof r.ns === 'string')),
    job: { namespace: entity.key.namespace, id: v.jobId },
    index: v.index,
    lastKey: v.lastKey,
    counts,
    warnings: decodeJson<Warnings>(entity, 'warnings', v.warnings, () => true),
    done: v.done,
    closed: v.closed,
    error: v.error,
    slices: v.slices,
  };
}
