import { decodeJson, decodeStored, jobKey, type JobRef } from '../control';
import { Entity, type Key } from '../datastore';
import { keyFromJson, keyToJson, type KeyJson } from './key-json';
import type { KeyRange } from './ranges';

/**
 * One entity per job (kind `_dsmigrate_job`, in the control namespace): the operation's description
 * and its shard plan. Shards are numbered by their place in `shards`; once a job has a plan it is
 * never split again, only extended while `pending` namespaces are still being cut into shards from
 * their key stream.
 */
export interface PlannedShard extends KeyRange {
  /** Keys the shard held when it was cut from a key stream (for progress totals). */
  expected?: number;
}

export interface PendingNamespace {
  namespace: string;
  /** The first key of the next page to cut; undefined before the first page. */
  cursor?: Key;
}

export interface JobPlan {
  job: JobRef;
  type: string;
  kind: string;
  /** The operation's fingerprint, to refuse resuming a job with a different operation. */
  operation: string;
  shards: PlannedShard[];
  pending: PendingNamespace[];
  createdAt: Date;
  /** A rate without `rampUp` ramps up: the operation wrote an empty kind when the job was planned (see Operation.rampsByDefault). */
  rampsByDefault?: boolean;
  /**
   * Its state is being deleted (src/sharding/progress.ts clearJobState): no batch may commit for it any
   * more. A shard that has no checkpoint yet reads the plan after its batch's transaction found none.
   */
  cleared?: true;
}

interface StoredRange {
  ns: string;
  s?: KeyJson;
  e?: KeyJson;
  /** The start is exclusive / the end inclusive (ranges bounded by what another job committed). */
  sx?: true;
  ei?: true;
}

interface StoredPlan {
  shards: (StoredRange & { x?: number })[];
  pending: { ns: string; c?: KeyJson }[];
  ramp?: true;
  cleared?: true;
}

/** Whether a job's plan exists and is not being cleared: the one test of whether batches may still commit for it. */
export function isLive(plan: JobPlan | undefined): plan is JobPlan {
  return plan !== undefined && !plan.cleared;
}

export function encodeRange(range: KeyRange): StoredRange {
  return {
    ns: range.namespace,
    s: range.start && keyToJson(range.start),
    e: range.end && keyToJson(range.end),
    ...(range.startExclusive ? { sx: true as const } : {}),
    ...(range.endInclusive ? { ei: true as const } : {}),
  };
}

export function decodeRange(stored: StoredRange): KeyRange {
  return {
    namespace: stored.ns,
    start: stored.s && keyFromJson(stored.s),
    end: stored.e && keyFromJson(stored.e),
    ...(stored.sx ? { startExclusive: true } : {}),
    ...(stored.ei ? { endInclusive: true } : {}),
  };
}

export function encodePlan(plan: JobPlan): Entity {
  const stored: StoredPlan = {
    shards: plan.shards.map((s) => ({ ...encodeRange(s), x: s.expected })),
    pending: plan.pending.map((p) => ({ ns: p.namespace, c: p.cursor && keyToJson(p.cursor) })),
    ...(plan.rampsByDefault ? { ramp: true as const } : {}),
    ...(plan.cleared ? { cleared: true as const } : {}),
  };
  return Entity.from(
    jobKey(plan.job),
    {
      jobId: plan.job.id,
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

export function decodePlan(entity: Entity): JobPlan {
  const v = decodeStored(entity, { jobId: 'string', type: 'string', kind: 'string', operation: 'string', plan: 'string', createdAt: 'date' });
  const stored = decodeJson<StoredPlan>(entity, 'plan', v.plan, (x) => Array.isArray(x.shards) && Array.isArray(x.pending));
  return {
    job: { namespace: entity.key.namespace, id: v.jobId },
    type: v.type,
    kind: v.kind,
    operation: v.operation,
    shards: stored.shards.map((s) => ({ ...decodeRange(s), expected: s.x })),
    pending: stored.pending.map((p) => ({ namespace: p.ns, cursor: p.c && keyFromJson(p.c) })),
    createdAt: v.createdAt,
    ...(stored.ramp === true ? { rampsByDefault: true } : {}),
    ...(stored.cleared === true ? { cleared: true as const } : {}),
  };
}
