import type { Entity } from '../datastore';
import type { EntityDecision } from '../sharding';
import { DataOperation, type KindOrModel, type Postcondition } from './data-operation';
import type { ScanOptions } from './options';

/** Deletes every entity of a kind (in the scanned namespaces, matching the filter): DROP TABLE. */
export class DeleteModelData extends DataOperation {
  constructor(kind: KindOrModel, options: ScanOptions = {}) {
    super('DeleteModelData', kind, options);
  }

  protected summary(): string {
    return `Delete every ${this.kind} entity`;
  }

  protected positional(): unknown[] {
    return [];
  }

  protected args(): Record<string, unknown> {
    return {};
  }

  protected override irreversibleBecause(): string {
    return 'deleted entities cannot be brought back; copy them first (CopyModelData) if they may be needed.';
  }

  override get postcondition(): Postcondition {
    return () => 'still exists';
  }

  apply(entity: Entity): EntityDecision {
    return { action: 'delete', key: entity.key };
  }
}
