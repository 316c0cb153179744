import type { Entity } from '../datastore';
import type { EntityDecision } from '../sharding';
import { fieldDataMaker, registerFieldDataMaker, type FieldDefault } from './field-data';
import { DataOperation, type KindOrModel, type Postcondition } from './data-operation';
import type { ScanOptions } from './options';

export interface RemoveFieldDataOptions extends Omit<ScanOptions, 'reverse'> {
  /** Makes the removal reversible: its reverse is AddFieldData with these options; `'noop'` backs out leaving the data as it is. */
  reverse?: FieldDefault | 'noop';
}

/** Deletes a property from every entity that has it, reclaiming its storage and index entries. */
export class RemoveFieldData extends DataOperation {
  constructor(
    kind: KindOrModel,
    readonly name: string,
    private readonly removeOptions: RemoveFieldDataOptions = {},
  ) {
    super('RemoveFieldData', kind, removeOptions);
    this.checkName(name);
  }

  protected summary(): string {
    return `Remove ${this.kind}.${this.name}`;
  }

  protected positional(): unknown[] {
    return [this.name];
  }

  protected args(): Record<string, unknown> {
    return { name: this.name, reverse: this.removeOptions.reverse };
  }

  override get reversible(): boolean {
    return typeof this.removeOptions.reverse === 'object';
  }

  /** An AddFieldData of the same field (made through field-data.ts, so that neither file imports the other). */
  override reverse(): DataOperation {
    const reverse = this.removeOptions.reverse;
    if (typeof reverse !== 'object') throw this.irreversible();
    return fieldDataMaker('add')(this.ref, this.name, { ...this.scanOptions(), ...reverse });
  }

  protected override irreversibleBecause(): string {
    return `the removed values of "${this.name}" are gone. To allow a reverse that re-adds a default, declare it: new RemoveFieldData(kind, '${this.name}', {reverse: {default: ...}}); to back out leaving the data as it is, {reverse: 'noop'}.`;
  }

  override get touchedProperties(): readonly string[] {
    return this.touching(this.name);
  }

  override get postcondition(): Postcondition {
    return (entity) => (entity.has(this.name) ? `still has ${this.name}` : undefined);
  }

  apply(entity: Entity): EntityDecision {
    return entity.delete(this.name) ? { action: 'put', entity } : { action: 'skip' };
  }
}

registerFieldDataMaker('remove', (kind, name, options) => new RemoveFieldData(kind, name, options));
