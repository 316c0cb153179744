import type { JobRef } from '../control';
import { propertiesHash, type Datastore, type Entity, type Key } from '../datastore';
import { DsMigrateError } from '../errors';
import {
  ABSENT,
  decodeImage,
  IMAGE_KIND,
  imageRanges,
  imageMarks,
  operationOfJob,
  restoredImage,
  writtenKeyOf,
  type ApplyContext,
  type BeforeImage,
  type EntityDecision,
  type KeyRange,
} from '../sharding';
import { DataOperation, isDataOperation, type Postcondition } from './data-operation';
import type { Operation } from './operation';
import { retentionMs } from './options';

/**
 * What a back-out does with an entity the application changed after the operation did (its hash is no longer
 * the one its before-image kept): `refuse` (the default) fails the step naming them and changes none of them;
 * `overwrite` restores them anyway; `skip` leaves them as they are.
 */
export type UndoConflicts = 'refuse' | 'overwrite' | 'skip';

export const UNDO_CONFLICTS: readonly UndoConflicts[] = ['refuse', 'overwrite', 'skip'];

/** The policy as given by an operator or a caller: one of UNDO_CONFLICTS, or BAD_INPUT naming what was given. */
export function checkUndoConflicts(policy: unknown): UndoConflicts {
  if (UNDO_CONFLICTS.includes(policy as UndoConflicts)) return policy as UndoConflicts;
  throw new DsMigrateError('BAD_INPUT', `--undo-conflicts must be one of ${UNDO_CONFLICTS.join(', ')}, not ${JSON.stringify(policy)}.`, { undoConflicts: String(policy) });
}

const SAMPLE = 5;

/**
 * The back-out of an operation kept with `undo` that declares no reverse of its own: a job over the
 * operation's before-images (src/sharding/before-images.ts), in the ranges its coverage says ran, that puts
 * back each entity as its image kept it (byte for byte) or deletes it where the operation created it, and
 * marks the image restored in the same transaction, so that a redelivered batch restores nothing twice.
 *
 * Overwrite guard, check then restore: before the job runs (beforeJob) every image still to restore is
 * compared with its entity; any the application changed since are refused together, named, with nothing
 * changed. One that changes between that check and its batch fails the batch by itself.
 */
export class RestoreBeforeImages extends DataOperation {
  constructor(
    readonly source: DataOperation,
    readonly index: number,
    /**
     * What to do with entities changed since. Carried by the run (src/migrations/run-state.ts), so that a Cloud
     * Tasks worker rebuilding the step applies the policy the operator gave. Not part of the fingerprint: a
     * back-out refused for conflicts resumes the same job under another policy.
     */
    readonly conflicts: UndoConflicts,
    /** Given (`dsmigrate verify`), a scan sees only this migration's images of the operation, by an equality filter. */
    migration?: string,
  ) {
    const { namespaces, batchSize } = source.scope;
    super('RestoreBeforeImages', IMAGE_KIND, { namespace: namespaces, batchSize, ...(migration !== undefined ? { filter: { operation: `${migration}#${index}` } } : {}) });
  }

  protected override checkNotReserved(kind: string, role?: string): void {
    if (kind !== IMAGE_KIND) super.checkNotReserved(kind, role);
  }

  /** Its scope is the operation's: said there. */
  override describe(): string {
    return this.summary();
  }

  protected summary(): string {
    return `Restore what "${this.source.describe()}" changed, from its before-images`;
  }

  protected positional(): unknown[] {
    return [this.source, this.index];
  }

  protected args(): Record<string, unknown> {
    return { of: JSON.parse(this.source.fingerprint()) as unknown, index: this.index };
  }

  override namespaces(store: Datastore): Promise<string[]> {
    return this.source.namespaces(store);
  }

  override async validate(store: Datastore): Promise<void> {
    await this.source.namespaces(store);
  }

  override jobBounds(todo: readonly KeyRange[] | undefined, namespaces: readonly string[], job: JobRef): KeyRange[] {
    return imageRanges(operationOfJob(job), todo, namespaces);
  }

  override relatedKeys(key: Key): readonly Key[] {
    return [writtenKeyOf(key)];
  }

  /** Every restored entity is as its before-image kept it (or absent, where the operation created it). */
  override get postcondition(): Postcondition {
    return (entity, [current]) => {
      const image = decodeImage(entity);
      if (!image.restoredAt) return undefined;
      if (!image.before) return current ? `${image.target} exists, but did not before the operation` : undefined;
      if (!current) return `${image.target} is missing, restored ${image.restoredAt.toISOString()}`;
      return propertiesHash(current) === propertiesHash(image.before) ? undefined : `${image.target} is not as its before-image (restored ${image.restoredAt.toISOString()})`;
    };
  }

  /** Refuses a back-out past the images' retention, and, unless told otherwise, one over entities changed since. */
  override async beforeJob(store: Datastore, job: JobRef): Promise<void> {
    const operation = operationOfJob(job);
    const namespaces = await this.namespaces(store);
    const marks = await imageMarks(store, operation, namespaces);
    if (!marks.kept) {
      throw new DsMigrateError(
        'BAD_INPUT',
        `Cannot back out ${this.source.describe()} (${operation}) from its before-images: it kept none in some of its namespaces (undo was turned on after it ran). ` +
          'Nothing was changed. Turn undo off for it to back out with its own reverse, or record it unapplied without changing any data with `dsmigrate migrate <target> --fake`.',
        { operation: this.source.type, kind: this.source.kind },
      );
    }
    const pruned = marks.prunedAt;
    if (pruned) {
      throw new DsMigrateError(
        'BAD_INPUT',
        `Cannot back out ${this.source.describe()} (${operation}) from its before-images: \`dsmigrate undo prune\` removed them on ${pruned.toISOString()}, past their retention (${this.source.undo?.retain ?? '?'}). ` +
          'Nothing was changed. Record it unapplied without changing any data with `dsmigrate migrate <target> --fake`.',
        { operation: this.source.type, kind: this.source.kind, pruned: pruned.toISOString() },
      );
    }
    const now = Date.now();
    let expired: Date | undefined;
    let count = 0;
    const sample: string[] = [];
    for (const range of imageRanges(operation, undefined, namespaces)) {
      for await (const batch of store.queryBatches({ kind: IMAGE_KIND, namespace: range.namespace, from: range.start, before: range.end })) {
        const images = batch.map(decodeImage).filter((image) => !image.restoredAt);
        for (const image of images) if (image.expiresAt.getTime() < now && (!expired || image.expiresAt < expired)) expired = image.expiresAt;
        if (expired || this.conflicts !== 'refuse') continue;
        const current = await store.lookup(images.map((image) => image.target));
        const changed = images.filter((image, i) => changedSince(image, current[i]));
        // A batch of this job may restore some between the query and the lookup (a redelivered step start, a
        // resumed run): its commit marks the image with the entity, so the image read again after the entity tells.
        for (const entity of await store.lookup(changed.map((image) => image.key))) {
          const image = entity && decodeImage(entity);
          if (!image || image.restoredAt) continue;
          count++;
          if (sample.length < SAMPLE) sample.push(image.target.toString());
        }
      }
    }
    if (expired) {
      throw new DsMigrateError(
        'BAD_INPUT',
        `Cannot back out ${this.source.describe()} (${operation}) from its before-images: they expired on ${expired.toISOString()} (undo retain ${this.source.undo?.retain ?? '?'}), and some may have been pruned. ` +
          'Nothing was changed. Record it unapplied without changing any data with `dsmigrate migrate <target> --fake`.',
        { operation: this.source.type, kind: this.source.kind, expired: expired.toISOString() },
      );
    }
    if (count > 0) {
      throw new DsMigrateError(
        'CONFLICT',
        `Cannot back out ${this.source.describe()} (${operation}): ${count} ${count === 1 ? 'entity was' : 'entities were'} changed since it ran (e.g. ${sample.join(', ')}), and restoring ${count === 1 ? 'it' : 'them'} would lose those changes. ` +
          'Nothing was changed. Pass --undo-conflicts overwrite to restore them anyway, or --undo-conflicts skip to leave them as they are and restore the rest.',
        { operation: this.source.type, kind: this.source.kind, conflicts: count, sample },
      );
    }
  }

  apply(entity: Entity, related: readonly (Entity | undefined)[], context: ApplyContext): EntityDecision {
    const image = decodeImage(entity);
    if ((context.migration !== undefined && image.operation !== `${context.migration}#${this.index}`) || image.restoredAt) return { action: 'skip' };
    const [current] = related;
    if (changedSince(image, current)) {
      if (this.conflicts === 'skip') return { action: 'skip', warning: { topic: 'Changed since the operation ran; left as it is (--undo-conflicts skip)', key: image.target } };
      if (this.conflicts === 'refuse') {
        throw new Error(`${image.target} was changed since the operation ran (after the check before this back-out): nothing of it was restored. Pass --undo-conflicts overwrite or skip`);
      }
    }
    const also = [restoredImage(entity, new Date())];
    return image.before ? { action: 'put', entity: image.before, also } : { action: 'delete', key: image.target, also };
  }
}

/** The entity is no longer what the operation left there. */
function changedSince(image: BeforeImage, current: Entity | undefined): boolean {
  return image.after !== (current ? propertiesHash(current) : ABSENT);
}

/** Whether backing out an operation restores its before-images rather than running a reverse. */
export function restoresBeforeImages(operation: Operation): boolean {
  return isDataOperation(operation) && operation.restoresBeforeImages;
}

/** The operation that backs out operation `index` of a migration: its before-images restored (with the run's conflict policy), or its own reverse. */
export function backOutOf(operation: Operation, index: number, conflicts: UndoConflicts): Operation {
  return isDataOperation(operation) && operation.restoresBeforeImages ? new RestoreBeforeImages(operation, index, conflicts) : operation.reverse();
}

/** Whether it can be backed out with data: it keeps before-images, or has a reverse. */
export function canBackOut(operation: Operation): boolean {
  return restoresBeforeImages(operation) || operation.reversible;
}

/** The namespaces where these operations keep before-images ('*' resolved). */
export async function undoNamespaces(store: Datastore, operations: readonly Operation[]): Promise<string[]> {
  const all = new Set<string>();
  for (const operation of operations) if (isDataOperation(operation) && operation.undo) for (const namespace of await operation.namespaces(store)) all.add(namespace);
  return [...all].sort();
}

/** `undo` in dsmigrate.config: the operation types that keep before-images where they do not say, and for how long. */
export interface ProjectUndo {
  operations: readonly string[];
  retain: string;
}

/** The data operations a project may keep before-images for, by type. */
export const UNDO_OPERATION_TYPES: readonly string[] = ['AddFieldData', 'RemoveFieldData', 'CopyFieldData', 'DeleteModelData', 'CopyModelData', 'CopyModelDataToNamespace', 'MapFunctionOnEntities'];

/** The project's problem with `undo` in its config, or undefined. */
export function projectUndoProblem(undo: unknown): string | undefined {
  if (typeof undo !== 'object' || undo === null || Array.isArray(undo)) return `must be {operations: ['DeleteModelData', ...], retain: '7d'}, not ${JSON.stringify(undo)}`;
  const { operations, retain, ...rest } = undo as Record<string, unknown>;
  if (Object.keys(rest).length > 0) return `has ${Object.keys(rest).join(', ')}, which it does not take (operations, retain)`;
  if (!Array.isArray(operations) || operations.some((o) => typeof o !== 'string' || !UNDO_OPERATION_TYPES.includes(o))) {
    return `operations must list operation types among ${UNDO_OPERATION_TYPES.join(', ')}, not ${JSON.stringify(operations)}`;
  }
  if (retain !== undefined && retentionMs(retain) === undefined) return `retain must be a whole number of days, hours, minutes or seconds such as '7d', not ${JSON.stringify(retain)}`;
  return undefined;
}

/**
 * Applies `undo` of the project's config to the loaded migrations' operations, where an operation's own
 * `undo` option says nothing. Applied at load by every process that runs migrations (the CLI, a Cloud Tasks
 * worker), so all of them need the same config; a job laid out with one setting and resumed under another is
 * refused, and a back-out of an operation that kept no images is refused (src/sharding/undo-data.ts marks).
 */
export function applyProjectUndo(operations: readonly Operation[], undo: ProjectUndo): void {
  const retainMs = retentionMs(undo.retain);
  if (retainMs === undefined) throw new DsMigrateError('BAD_INPUT', `undo.retain must be a whole number of days, hours, minutes or seconds such as '7d', not ${JSON.stringify(undo.retain)}.`);
  for (const operation of operations) if (isDataOperation(operation) && undo.operations.includes(operation.type)) operation.keepBeforeImages({ retain: undo.retain, retainMs });
}
