import { Key, type Entity } from '../datastore';
import { DsMigrateError, errorMessage, isDsMigrateError } from '../errors';
import { uniqueFieldsOf, type UniqueFields } from '../model';
import { addWarning, zeroCounts, type Counts, type Warnings } from './counts';
import { entityBytes, keyBytes } from './entity-size';
import { matchesFilters } from './filters';
import type { EntityDecision, ShardWork } from './work';

export interface DryRunSample {
  key: string;
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
}

export interface ApplyOptions {
  /** Keys up to this one are already done (another worker got there first): skip them. */
  doneThrough?: Key;
  /** Stop before the writes would exceed this many bytes (at least one entity is always taken). */
  byteBudget: number;
  migration?: string;
  dryRun: boolean;
  /**
   * Stop taking entities once deciding them has taken this long (at least one is always taken): a
   * transaction must commit within Datastore's limits (60 s idle, 270 s in all) however slow the
   * operation's function is per entity.
   */
  timeBudgetMs?: number;
  /** Dry runs: collect before/after samples of changed entities. */
  samples?: { limit: number; into: DryRunSample[] };
}

export interface AppliedBatch {
  /** How many of the batch's keys were dealt with; the rest go back to the queue. */
  consumed: number;
  delta: Counts;
  warnings: Warnings;
  /** Entities to write and keys to delete. */
  puts: Entity[];
  deletes: Key[];
  /** Entities whose unique markers alone change. */
  markers: { entity: Entity; claim: boolean }[];
  /** The scanned entities of a kind with unique fields, as they were before the operation changed them (for their markers). */
  originals: Map<string, Entity>;
  /** The time budget ended the batch early. */
  outOfTime: boolean;
}

/**
 * Runs the operation on one batch of entities that were read together (inside the batch's
 * transaction, or plainly in a dry run). Missing entities and entities that no longer match the
 * filters are passed over; they are not counted as scanned.
 */
export async function applyBatch(work: ShardWork, keys: readonly Key[], found: ReadonlyMap<string, Entity>, options: ApplyOptions): Promise<AppliedBatch> {
  const delta = zeroCounts();
  const warnings: Warnings = {};
  const puts: Entity[] = [];
  const deletes: Key[] = [];
  const markers: AppliedBatch['markers'] = [];
  const originals = new Map<string, Entity>();
  const keepsMarkers = uniqueFieldsFor(work, work.kind) !== undefined;
  let bytes = 0;
  let consumed = 0;
  let outOfTime = false;
  const started = Date.now();
  /** Keys written so far, and the source key that wrote each. */
  const written = new Map<string, string>();
  for (const key of keys) {
    if (consumed > 0 && options.timeBudgetMs !== undefined && Date.now() - started >= options.timeBudgetMs) {
      outOfTime = true;
      break;
    }
    if (options.doneThrough && Key.compare(key, options.doneThrough) <= 0) {
      consumed++;
      continue;
    }
    const entity = found.get(key.toString());
    if (entity && matchesFilters(entity, work.filters)) {
      const sampling = options.samples && options.samples.into.length < options.samples.limit;
      const before = sampling ? entity.toObject() : null;
      const related = work.relatedKeys(key).map((k) => found.get(k.toString()));
      // Operations change entities in place: the markers to drop are those of the values held before.
      if (keepsMarkers) originals.set(key.toString(), entity.snapshot());
      const decision = await decide(work, entity, related, options, delta, warnings);
      if (decision?.action === 'markers') markers.push({ entity: decision.entity, claim: decision.claim });
      else if (decision && decision.action !== 'skip') {
        const size = decision.action === 'put' ? entityBytes(decision.entity) : keyBytes(decision.key);
        if (consumed > 0 && bytes + size > options.byteBudget) break;
        bytes += size;
        const target = decision.action === 'put' ? decision.entity.key : decision.key;
        if (written.has(target.toString())) {
          // Two writes of one key in one commit: Datastore keeps only the last, and the other is lost unseen.
          throw new DsMigrateError(
            'OPERATION_FAILED',
            `${work.type} on ${work.kind} wrote ${target} twice in one batch (from ${written.get(target.toString())} and ${key}): each entity may be written once; make the function's writes go to distinct keys.`,
            {
              key: target.toString(),
              kind: work.kind,
              operation: work.type,
              migration: options.migration,
            },
          );
        }
        written.set(target.toString(), key.toString());
        if (decision.action === 'put') puts.push(decision.entity);
        else deletes.push(decision.key);
        if (sampling) options.samples!.into.push({ key: key.toString(), before, after: decision.action === 'put' ? decision.entity.toObject() : null });
      }
      delta.scanned++;
      if (decision) count(decision, delta, warnings);
    }
    consumed++;
  }
  return { consumed, delta, warnings, puts, deletes, markers, originals, outOfTime };
}

/** The unique fields whose markers a batch keeps for entities of `kind`: the operation's own say, else the kind's registered model's. */
export function uniqueFieldsFor(work: ShardWork, kind: string): UniqueFields | undefined {
  return work.uniqueFields ? work.uniqueFields(kind) : uniqueFieldsOf(kind);
}

/** The operation's decision, or undefined when it threw and errors are skipped (counted as failed). */
async function decide(work: ShardWork, entity: Entity, related: (Entity | undefined)[], options: ApplyOptions, delta: Counts, warnings: Warnings): Promise<EntityDecision | undefined> {
  try {
    return await work.apply(entity, related, { migration: options.migration, dryRun: options.dryRun });
  } catch (error) {
    // A mistake in how the operation is written (BAD_INPUT, e.g. a map function assigning entity.x) is
    // the same on every entity: it stops the run even with skipErrors, which is for bad data.
    const misuse = isDsMigrateError(error, 'BAD_INPUT');
    if (!work.skipErrors || misuse) {
      const where = options.migration ? ` in migration ${options.migration}` : '';
      throw new DsMigrateError(
        'OPERATION_FAILED',
        `${work.type} on ${work.kind} failed at key ${entity.key}${where}: ${errorMessage(error)}. Fix the ${misuse ? 'function' : 'data or the function'} and re-run; done batches are kept.` +
          (misuse ? '' : ' Pass {skipErrors: true} to count such entities as failed and go on.'),
        { key: entity.key.toString(), migration: options.migration, kind: work.kind, operation: work.type },
        { cause: error },
      );
    }
    delta.failed++;
    addWarning(warnings, 'Failed and skipped', `${entity.key} (${errorMessage(error).slice(0, 200)})`);
    return undefined;
  }
}

function count(decision: EntityDecision, delta: Counts, warnings: Warnings): void {
  if (decision.action === 'put' || decision.action === 'markers') delta.changed++;
  else if (decision.action === 'delete') delta.deleted++;
  else delta.skipped++;
  if ((decision.action === 'put' || decision.action === 'skip') && decision.warning) addWarning(warnings, decision.warning.topic, decision.warning.key.toString());
}
