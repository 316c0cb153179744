import { Key } from '../datastore';

/**
 * Every kind the tool keeps its own state in, and every key into them. All of them live in the
 * control namespace (`controlNamespace`, '' by default), so two control namespaces never see or
 * clear each other's state, even over the same migration files.
 *
 * Two words are kept apart: a *run* is one `migrate` that holds the lease (its state is a
 * `_dsmigrate_run` entity, for either driver); a *job* is one operation carried out in one direction: its shard plan and
 * its shards' checkpoints.
 */
export const CONTROL_KINDS = {
  /** A migration's record: state, direction, and what each operation has applied. */
  migration: '_dsmigrate_migration',
  /** The lease: one entity per control namespace. */
  lease: '_dsmigrate_lock',
  /** A job's shard plan. */
  job: '_dsmigrate_job',
  /** A shard's checkpoint, one root entity per shard so that shards never contend. */
  shard: '_dsmigrate_shard',
  /** The keys a shard held when it was cut from a key stream (Cloud Tasks slices read them). */
  shardKeys: '_dsmigrate_shard_keys',
  /** A run's state, of either driver (src/migrations/run-state.ts). */
  run: '_dsmigrate_run',
  /** Who moves a Cloud Tasks run past one of its steps (src/executors/cloud-tasks/transition-claim.ts). */
  transition: '_dsmigrate_transition',
} as const;

/**
 * The tool's kinds that live beside the application's data rather than in the control namespace: unique
 * markers (in their entities' namespace) and the runtime model factory's definitions, versions, schema
 * migrations and cleanups (in the factory's namespace). (`_dsmigrate_probe`, written and deleted once per connection to
 * learn whether property masks are honoured, is named in src/datastore/property-masks.ts, below this layer.)
 */
export const DATA_SIDE_KINDS = {
  /** One per (kind, field, value) of a unique field: src/model/unique.ts. */
  uniqueMarker: '_dsmigrate_unique',
  /** A runtime model's current definition: src/dynamic/store.ts. */
  modelDefinition: '_dsmigrate_model',
  /** Every version of a definition, children of it. */
  modelVersion: '_dsmigrate_model_version',
  /** The schema migration a definition change planned, a child of the definition. */
  schemaMigration: '_dsmigrate_schema_migration',
  /** Where a model's schema migrations stand, a child of the definition. */
  schemaState: '_dsmigrate_schema_state',
  /** What a schema cleanup removes (key name = its checksum), so that any process (a Cloud Tasks worker) can rebuild its operations. */
  schemaCleanup: '_dsmigrate_schema_cleanup',
  /**
   * An entity as it was before an operation kept with `undo` changed it, in that entity's namespace, written in
   * the same transaction as the change (src/sharding/before-images.ts); key name `<migration>#<operation>|<key>`.
   */
  beforeImage: '_dsmigrate_undo',
} as const;

/** Kinds that operations may never scan or write: the tool's own state, in any namespace. */
export const RESERVED_KIND_PREFIX = '_dsmigrate_';

/** One job: an operation of a migration in one direction, in a control namespace. */
export interface JobRef {
  readonly namespace: string;
  readonly id: string;
}

/** A job id: the migration, the operation's index, and a sequence number that each new job of that operation takes. */
export function jobRef(namespace: string, migrationId: string, operation: number, seq: number): JobRef {
  return { namespace, id: `${migrationId}#${operation}.${seq}` };
}

export function jobKey(job: JobRef): Key {
  return Key.of(CONTROL_KINDS.job, job.id, { namespace: job.namespace });
}

export function shardKey(job: JobRef, index: number): Key {
  return Key.of(CONTROL_KINDS.shard, `${job.id}::${index}`, { namespace: job.namespace });
}

export function shardKeysKey(job: JobRef, index: number): Key {
  return Key.of(CONTROL_KINDS.shardKeys, `${job.id}::${index}`, { namespace: job.namespace });
}

export function migrationKey(namespace: string, migrationId: string): Key {
  return Key.of(CONTROL_KINDS.migration, migrationId, { namespace });
}

export function leaseKey(namespace: string): Key {
  return Key.of(CONTROL_KINDS.lease, 'migrate', { namespace });
}

export function runKey(namespace: string, runId: string): Key {
  return Key.of(CONTROL_KINDS.run, runId, { namespace });
}

export function transitionKey(namespace: string, runId: string, migration: number, step: number): Key {
  return Key.of(CONTROL_KINDS.transition, `${runId}#${migration}#${step}`, { namespace });
}
