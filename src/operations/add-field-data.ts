import type { Entity, Value } from '../datastore';
import { DsMigrateError } from '../errors';
import { checkValue, fieldIndexed, storedValue, type FieldSpec } from '../model';
import type { EntityDecision } from '../sharding';
import { showValue } from './describe';
import { fieldDataMaker, registerFieldDataMaker, type FieldDefault } from './field-data';
import { DataOperation, type KindOrModel, type Postcondition } from './data-operation';
import type { ScanOptions } from './options';

export interface AddFieldDataOptions extends ScanOptions, FieldDefault {}

/**
 * Writes a field's default into entities that lack it, so that queries can filter on it. Values
 * already present are kept unless `overwrite: true`. Reversed by RemoveFieldData of the same field.
 */
export class AddFieldData extends DataOperation {
  private readonly spec?: FieldSpec;

  constructor(
    kind: KindOrModel,
    readonly name: string,
    private readonly addOptions: AddFieldDataOptions,
  ) {
    super('AddFieldData', kind, addOptions ?? {});
    this.checkName(name);
    if (!addOptions || !('default' in addOptions) || addOptions.default === undefined) {
      throw this.fail(`needs a default for "${name}": new AddFieldData(kind, '${name}', {default: ...}) (null is allowed).`, { field: name });
    }
    if (this.fields) {
      this.spec = this.fields[name];
      if (!this.spec) throw this.fail(`sets "${name}", which is not a field of the model (fields: ${Object.keys(this.fields).join(', ')}).`, { field: name });
      const reason = typeof addOptions.default === 'function' ? undefined : checkValue(this.spec, addOptions.default);
      if (reason) throw this.fail(`has a default of the wrong type for "${name}": it ${reason}.`, { field: name });
    }
  }

  protected summary(): string {
    const how = this.addOptions.overwrite ? 'on every entity' : 'where missing';
    return `Set ${this.kind}.${this.name} to ${showValue(this.addOptions.default)} ${how}`;
  }

  protected positional(): unknown[] {
    return [this.name];
  }

  protected args(): Record<string, unknown> {
    const { default: value, overwrite, indexed } = this.addOptions;
    return { name: this.name, default: value, overwrite, indexed };
  }

  override get reversible(): boolean {
    return true;
  }

  /** A RemoveFieldData of the same field (made through field-data.ts, so that neither file imports the other). */
  override reverse(): DataOperation {
    const { default: value, overwrite, indexed } = this.addOptions;
    return fieldDataMaker('remove')(this.ref, this.name, { ...this.scanOptions(), reverse: { default: value, overwrite, indexed } });
  }

  /** A default made from the entity reads all of it. */
  override get touchedProperties(): readonly string[] | undefined {
    return typeof this.addOptions.default === 'function' ? undefined : this.touching(this.name);
  }

  override get postcondition(): Postcondition {
    return (entity) => (entity.has(this.name) ? undefined : `lacks ${this.name}`);
  }

  /** At once for a plain default (no promise per entity); after the function's value for a default made from the entity. */
  apply(entity: Entity): EntityDecision | Promise<EntityDecision> {
    if (entity.has(this.name) && !this.addOptions.overwrite) return { action: 'skip' };
    const given = this.addOptions.default;
    return typeof given === 'function' ? Promise.resolve(given(entity)).then((value) => this.put(entity, value)) : this.put(entity, given);
  }

  private put(entity: Entity, value: Value): EntityDecision {
    let stored: Value = value;
    let indexed = this.addOptions.indexed;
    if (this.spec) {
      const reason = checkValue(this.spec, value);
      if (reason) throw new DsMigrateError('TYPE_MISMATCH', `the default for ${this.kind}.${this.name} ${reason}`, { kind: this.kind, field: this.name, key: entity.key.toString() });
      stored = storedValue(this.spec, value);
      indexed ??= fieldIndexed(this.spec);
    }
    entity.set(this.name, stored, { indexed });
    return { action: 'put', entity };
  }
}

registerFieldDataMaker('add', (kind, name, options) => new AddFieldData(kind, name, options));
