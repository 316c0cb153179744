import { isDeepStrictEqual } from 'node:util';
import type { Entity } from '../datastore';
import type { EntityDecision } from '../sharding';
import { DataOperation, type KindOrModel, type Postcondition } from './data-operation';
import type { ScanOptions } from './options';

export interface CopyFieldDataOptions extends ScanOptions {
  /** Replace values already in the target field (the default: the old field is the source of truth). */
  overwrite?: boolean;
}

/**
 * Copies one property's stored value into another, byte for byte (type, meaning and index setting
 * included). Entities without the source are skipped. Step 4a of renaming a field.
 */
export class CopyFieldData extends DataOperation {
  constructor(
    kind: KindOrModel,
    readonly from: string,
    readonly to: string,
    private readonly copyOptions: CopyFieldDataOptions = {},
  ) {
    super('CopyFieldData', kind, copyOptions);
    this.checkName(from, 'source property');
    this.checkName(to, 'target property');
    if (from === to) throw this.fail(`copies "${from}" onto itself.`, { field: from });
    // The source may already be gone from the model (it is being renamed away); the target may not.
    if (this.fields && !(to in this.fields)) throw this.fail(`copies into "${to}", which is not a field of the model (fields: ${Object.keys(this.fields).join(', ')}).`, { field: to });
  }

  protected summary(): string {
    return `Copy ${this.kind}.${this.from} into ${this.to}${this.copyOptions.overwrite === false ? ' where missing' : ''}`;
  }

  protected positional(): unknown[] {
    return [this.from, this.to];
  }

  protected args(): Record<string, unknown> {
    return { from: this.from, to: this.to, overwrite: this.copyOptions.overwrite };
  }

  protected override irreversibleBecause(): string {
    return `the values "${this.to}" held before the copy are not kept.`;
  }

  override get touchedProperties(): readonly string[] {
    return this.touching(this.from, this.to);
  }

  override get postcondition(): Postcondition {
    return (entity) => (entity.has(this.from) && !entity.has(this.to) ? `has ${this.from} but no ${this.to}` : undefined);
  }

  apply(entity: Entity): EntityDecision {
    const source = entity.raw(this.from);
    if (!source) return { action: 'skip' };
    const target = entity.raw(this.to);
    if (target && (this.copyOptions.overwrite === false || isDeepStrictEqual(target, source))) return { action: 'skip' };
    entity.setRaw(this.to, source);
    return { action: 'put', entity };
  }
}
