import type { Datastore, Entity } from '../datastore';
import { uniqueValueOf, type UniqueFields } from '../model';
import type { EntityDecision } from '../sharding';
import { DataOperation, type KindOrModel } from './data-operation';
import type { ScanOptions } from './options';

/** Duplicate groups shown in an error, and keys shown per group. */
const GROUPS_SHOWN = 5;
const KEYS_SHOWN = 5;

export interface DuplicateGroup {
  value: string;
  keys: string[];
}

/** The unique fields of `field` alone, read from the property itself. */
function uniqueOf(kind: string, field: string): UniqueFields {
  return { kind, fields: [field], valueOf: (entity, name) => uniqueValueOf(kind, name, entity, entity.has(name) ? name : undefined) };
}

/** What building and dropping a field's markers share: the field, its markers' shape, and reversibility. */
abstract class UniqueMarkersOperation extends DataOperation {
  protected readonly unique: UniqueFields;

  protected constructor(
    type: string,
    kind: KindOrModel,
    readonly field: string,
    options: ScanOptions,
  ) {
    super(type, kind, options);
    this.checkName(field, 'unique field');
    this.unique = uniqueOf(this.kind, field);
  }

  protected positional(): unknown[] {
    return [this.field];
  }

  protected args(): Record<string, unknown> {
    return { field: this.field };
  }

  override get reversible(): boolean {
    return true;
  }

  uniqueFields(kind: string): UniqueFields | undefined {
    return kind === this.kind ? this.unique : undefined;
  }

  override get touchedProperties(): readonly string[] {
    return this.touching(this.field);
  }
}

/**
 * Builds the unique markers of one field for the entities that already exist (src/model/unique.ts), so
 * that the field can be declared `unique` on data written before. Duplicates are found before anything
 * is written: the command fails listing the duplicate groups, or with `skipErrors` builds markers for
 * the first entity of each group and reports the others. Reversed by dropping the markers again.
 */
export class BuildUniqueMarkers extends UniqueMarkersOperation {
  /** With skipErrors: the keys that share a value with an earlier entity, left without a marker. */
  private duplicates = new Set<string>();

  constructor(kind: KindOrModel, field: string, options: ScanOptions = {}) {
    super('BuildUniqueMarkers', kind, field, options);
    if (this.fields && !(field in this.fields)) throw this.fail(`builds markers for "${field}", which is not a field of the model (fields: ${Object.keys(this.fields).join(', ')}).`, { field });
  }

  protected summary(): string {
    return `Build the unique markers of ${this.kind}.${this.field}`;
  }

  override reverse(): DataOperation {
    return new DropUniqueMarkers(this.ref, this.field, this.scanOptions());
  }

  /** Finds every group of entities sharing a value, by one scan ordered on the field (adjacent values), before anything is written. */
  override async validate(store: Datastore): Promise<void> {
    await super.validate(store);
    const groups = await this.duplicateGroups(store);
    if (groups.length === 0) return;
    if (this.skipErrors) {
      this.duplicates = new Set(groups.flatMap((g) => g.keys.slice(1)));
      return;
    }
    const shown = groups
      .slice(0, GROUPS_SHOWN)
      .map((g) => `${g.value}: ${g.keys.slice(0, KEYS_SHOWN).join(', ')}${g.keys.length > KEYS_SHOWN ? ` and ${g.keys.length - KEYS_SHOWN} more` : ''}`)
      .join('; ');
    throw this.fail(
      `found ${groups.length} group(s) of entities sharing a value of "${this.field}" (${shown}${groups.length > GROUPS_SHOWN ? '; ...' : ''}). Make the values unique first, or pass {skipErrors: true} to mark the first of each group and report the rest.`,
      { field: this.field, duplicateGroups: groups.length, groups: groups.slice(0, GROUPS_SHOWN) },
    );
  }

  async duplicateGroups(store: Datastore): Promise<DuplicateGroup[]> {
    const groups: DuplicateGroup[] = [];
    for (const namespace of await this.namespaces(store)) {
      let last: { marker: string; value: string; keys: string[] } | undefined;
      const close = () => last && last.keys.length > 1 && groups.push({ value: last.value, keys: last.keys });
      for await (const entity of store.query({ kind: this.kind, namespace, order: [{ property: this.field }] })) {
        const value = this.unique.valueOf(entity, this.field);
        if (!value) continue;
        if (last?.marker === value.markerName) last.keys.push(entity.key.toString());
        else {
          close();
          last = { marker: value.markerName, value: value.display, keys: [entity.key.toString()] };
        }
      }
      close();
    }
    return groups;
  }

  apply(entity: Entity): EntityDecision {
    if (this.duplicates.has(entity.key.toString())) return { action: 'skip', warning: { topic: `Shares its ${this.field} with another entity: no marker`, key: entity.key } };
    return this.unique.valueOf(entity, this.field) ? { action: 'markers', entity, claim: true } : { action: 'skip' };
  }
}

/** The reverse of BuildUniqueMarkers: drops the markers the field's values own. */
export class DropUniqueMarkers extends UniqueMarkersOperation {
  constructor(kind: KindOrModel, field: string, options: ScanOptions = {}) {
    super('DropUniqueMarkers', kind, field, options);
  }

  protected summary(): string {
    return `Drop the unique markers of ${this.kind}.${this.field}`;
  }

  override reverse(): DataOperation {
    return new BuildUniqueMarkers(this.ref, this.field, this.scanOptions());
  }

  apply(entity: Entity): EntityDecision {
    return this.unique.valueOf(entity, this.field) ? { action: 'markers', entity, claim: false } : { action: 'skip' };
  }
}
