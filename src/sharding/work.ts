import type { Datastore, Entity, Key, PropertyFilter } from '../datastore';
import { uniqueFieldsOf, type UniqueFields } from '../model';
import type { UndoSpec } from './before-images';

/** Something worth telling the user about one entity, aggregated per topic (e.g. a parent missing in the target namespace). */
export interface EntityWarning {
  topic: string;
  key: Key;
}

/** What an operation decided for one entity; counted as changed, deleted or skipped. */
export type EntityDecision =
  /** `also`: other entities the same commit writes (a restored entity's before-image, marked restored). */
  | { action: 'put'; entity: Entity; warning?: EntityWarning; also?: readonly Entity[] }
  | { action: 'delete'; key: Key; also?: readonly Entity[] }
  | { action: 'skip'; warning?: EntityWarning }
  /** Only the entity's unique markers change: claimed for the values it holds, or dropped. Counted as changed. */
  | { action: 'markers'; entity: Entity; claim: boolean };

export interface ApplyContext {
  readonly migration?: string;
  readonly dryRun: boolean;
}

/**
 * What the shard engine needs of an operation: which kind to scan, how, and what to do with each
 * entity. Operations (src/operations) implement it; the engine knows nothing else about them.
 */
export interface ShardWork {
  readonly type: string;
  readonly kind: string;
  readonly filters: readonly PropertyFilter[];
  /** The most entities per transaction, at most MAX_BATCH; fewer where their writes would not fit in one commit (batcher.ts, apply.ts). */
  readonly batchSize: number;
  readonly skipErrors: boolean;
  /**
   * Every property `apply` reads or writes, when that is known ahead: where the backend honours property
   * masks, batches then read and write only these, and the rest of each entity is neither sent nor touched.
   */
  readonly touchedProperties?: readonly string[];
  /**
   * Keep a before-image of every entity a batch changes or deletes, in the batch's transaction
   * (src/sharding/before-images.ts). Batches then read whole entities: no property mask.
   */
  readonly undo?: UndoSpec;
  /** Other keys the batch's transaction must read for this entity (a copy's target). */
  relatedKeys(key: Key): readonly Key[];
  /** Decides one entity, given the related entities read in the same transaction (undefined where missing). */
  apply(entity: Entity, related: readonly (Entity | undefined)[], context: ApplyContext): EntityDecision | Promise<EntityDecision>;
  /**
   * The unique fields whose markers the batch keeps in step for entities of `kind` (src/model/unique.ts);
   * by default those of the kind's registered model.
   */
  uniqueFields?(kind: string): UniqueFields | undefined;
  /** Runs before a batch's transaction; it must be idempotent (reserving a copy's ids). */
  prepareBatch?(store: Datastore, keys: readonly Key[]): Promise<void>;
}

/** A transaction holds at most 500 mutations: a batch's writes (one per entity) and its checkpoint. */
export const MAX_BATCH = 499;

/** The unique fields whose markers a batch keeps for entities of `kind`: the operation's own say, else the kind's registered model's. */
export function uniqueFieldsFor(work: ShardWork, kind: string): UniqueFields | undefined {
  return work.uniqueFields ? work.uniqueFields(kind) : uniqueFieldsOf(kind);
}
