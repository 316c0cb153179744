import { decodeJson, decodeStored, jobKey, type JobRef } from '../control';
import { Entity, type Key } from '../datastore';
import { keyFromJson, keyToJson, type KeyJson } from './key-json';
import type { KeyRange } from './ranges';

/**
 * One entity per job (kind `_dsmigrate_job`, in the control namespace): the operation's description
 * and its shard layout. Shards are numbered by their place in `shards`; once a job has a layout it is
 * never split again, only extended while `pending` namespaces are still being cut into shards from
 * their key stream.
 */
export interface LayoutShard extends KeyRange {
  /** Keys the shard held when it was cut from a key stream (for progress totals). */
  expected?: number;
}

export interface PendingNamespace {
  namespace: string;
  /** The first key of the next page to cut; undefined before the first page. */
  cursor?: Key;
}

export interface JobLayout {
  job: JobRef;
  type: string;
  kind: string;
  /** The operation's fingerprint, to refuse resuming a job with a different operation. */
  operation: string;
  shards: LayoutShard[];
  pending: PendingNamespace[];
  createdAt: Date;
  /** A rate without `rampUp` ramps up: the operation wrote an empty kind when the job was laid out (see Operation.rampsByDefault). */
  rampsByDefault?: boolean;
  /**
   * Its state is being deleted (src/sharding/progress.ts clearJobState): no batch may commit for it any
   * more. A shard that has no checkpoint yet reads the layout after its batch's transaction found none.
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

interface StoredLayout {
  shards: (StoredRange & { x?: number })[];
  pending: { ns: string; c?: KeyJson }[];
  ramp?: true;
  cleared?: true;
}

/** Whether a job's layout exists and is not being cleared: the one test of whether batches may still commit for it. */
export function isLive(layout: JobLayout | undefined): layout is JobLayout {
  return layout !== undefined && !layout.cleared;
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

export function encodeLayout(layout: JobLayout): Entity {
  const stored: StoredLayout = {
    shards: layout.shards.map((s) => ({ ...encodeRange(s), x: s.expected })),
    pending: layout.pending.map((p) => ({ ns: p.namespace, c: p.cursor && keyToJson(p.cursor) })),
    ...(layout.rampsByDefault ? { ramp: true as const } : {}),
    ...(layout.cleared ? { cleared: true as const } : {}),
  };
  return Entity.from(
    jobKey(layout.job),
    {
      jobId: layout.job.id,
      type: layout.type,
      kind: layout.kind,
      operation: layout.operation,
      // `plan` and `planned` are the names the stored entity has always had.
      plan: JSON.stringify(stored),
      shardsTotal: layout.shards.length,
      planned: layout.pending.length === 0,
      createdAt: layout.createdAt,
      updatedAt: new Date(),
    },
    { excludeFromIndexes: ['operation', 'plan'] },
  );
}

export function decodeLayout(entity: Entity): JobLayout {
  const v = decodeStored(entity, { jobId: 'string', type: 'string', kind: 'string', operation: 'string', plan: 'string', createdAt: 'date' });
  const stored = decodeJson<StoredLayout>(entity, 'plan', v.plan, (x) => Array.isArray(x.shards) && Array.isArray(x.pending));
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
