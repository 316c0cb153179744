import { kindOf } from '../model';
import { CopyOperation, type CopyOptions } from './copies';
import type { KindOrModel } from './data-operation';

/** Copies every entity of a kind into another kind: same ids, names and ancestors, only the leaf kind changes. */
export class CopyModelData extends CopyOperation {
  readonly toKind: string;

  constructor(kind: KindOrModel, toKind: KindOrModel, options: CopyOptions = {}) {
    const target = kindOf(toKind);
    super('CopyModelData', kind, { toKind: target }, options);
    this.toKind = target;
    if (target === this.kind) throw this.fail('copies the kind onto itself; give another kind, or use CopyModelDataToNamespace.');
  }

  protected summary(): string {
    return `Copy every ${this.kind} entity into ${this.toKind}${this.copyOptions.overwriteExisting ? ', overwriting existing ones' : ''}`;
  }

  protected positional(): unknown[] {
    return [this.toKind];
  }

  protected args(): Record<string, unknown> {
    return { toKind: this.toKind, overwriteExisting: this.copyOptions.overwriteExisting };
  }
}
