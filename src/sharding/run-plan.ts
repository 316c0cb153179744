import { Entity, Key } from '../datastore';
import { DsMigrateError } from '../errors';
import { keyFromJson, keyToJson, type KeyJson } from './key-json';
import type { KeyRange } from './ranges';

/**
 * One entity per operation run (kind `_dsmigrate_operation`, named by the run id, default namespace):
 * the operation's description and its shard plan. Shards are numbered by their place in `shards`;
 * once a run has a plan it is never split again, only extended while `pending` namespaces are still
 * being cut into shards from their key stream.
 */
export const RUN_KIND = '_dsmigrate_operation';

export interface PlannedShard extends KeyRange {
  /** Keys the shard held when it was cut from a key stream (for progress totals). */
  expected?: number;
}

export interface PendingNamespace {
  namespace: string;
  /** The first key of the next page to cut; undefined before the first page. */
  cursor?: Key;
}

export interface RunPlan {
  runId: string;
  type: string;
  kind: string;
  /** The operation's fingerprint, to refuse resuming a run id with a different operation. */
  operation: string;
  shards: PlannedShard[];
  pending: PendingNamespace[];
  createdAt: Date;
}

export function runKey(runId: string): Key {
  return Key.of(RUN_KIND, runId);
}

interface StoredPlan {
  shards: { ns: string; s?: KeyJson; e?: KeyJson; x?: number }[];
  pending: { ns: string; c?: KeyJson }[];
}

export function encodeRun(plan: RunPlan): Entity {
  const stored: StoredPlan = {
    shards: plan.shards.map((s) => ({ ns: s.namespace, s: s.start && keyToJson(s.start), e: s.end && keyToJson(s.end), x: s.expected })),
    pending: plan.pending.map((p) => ({ ns: p.namespace, c: p.cursor && keyToJson(p.cursor) })),
  };
  return Entity.from(
    runKey(plan.runId),
    {
      runId: plan.runId,
      type: plan.type,
      kind: plan.kind,
      operation: plan.operation,
      plan: JSON.stringify(stored),
      shardsTotal: plan.shards.length,
      planned: plan.pending.length === 0,
      createdAt: plan.createdAt,
      updatedAt: new Date(),
    },
    { excludeFromIndexes: ['operation', 'plan'] },
  );
}

export function decodeRun(entity: Entity): RunPlan {
  const text = entity.get('plan');
  if (typeof text !== 'string') throw new DsMigrateError('DATASTORE', `Run state ${entity.key} has no plan.`, { key: entity.key.toString() });
  const stored = JSON.parse(text) as StoredPlan;
  return {
    runId: String(entity.get('runId')),
    type: String(entity.get('type')),
    kind: String(entity.get('kind')),
    operation: String(entity.get('operation')),
    shards: stored.shards.map((s) => ({ namespace: s.ns, start: s.s && keyFromJson(s.s), end: s.e && keyFromJson(s.e), expected: s.x })),
    pending: stored.pending.map((p) => ({ namespace: p.ns, cursor: p.c && keyFromJson(p.c) })),
    createdAt: entity.get('createdAt') as Date,
  };
}
