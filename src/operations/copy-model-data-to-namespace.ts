import { Key, type Datastore } from '../datastore';
import { kindOf } from '../model';
import { CopyOperation, type CopyOptions } from './copies';
import type { KindOrModel } from './data-operation';

export interface CopyToNamespaceOptions extends CopyOptions {
  /** Also change the leaf kind of the copies. */
  toKind?: KindOrModel;
}

/**
 * Copies every entity of a kind into another namespace, keeping ids, names and the whole ancestor
 * path (ancestors are moved to the target namespace too; copy them first, or they are reported missing).
 */
export class CopyModelDataToNamespace extends CopyOperation {
  constructor(
    kind: KindOrModel,
    readonly toNamespace: string,
    options: CopyToNamespaceOptions = {},
  ) {
    const toKind = options.toKind === undefined ? undefined : kindOf(options.toKind);
    super('CopyModelDataToNamespace', kind, { toNamespace, toKind }, options);
    if (typeof toNamespace !== 'string' || toNamespace === '*') throw this.fail(`needs a target namespace name ('' is the default namespace), not ${JSON.stringify(toNamespace)}.`);
    const problem = Key.namespaceProblem(toNamespace);
    if (problem)
      throw this.fail(`has a toNamespace that Datastore refuses: ${problem}. A namespace is '' (the default one) or up to 100 letters, digits, '.', '-' and '_'.`, { namespace: toNamespace });
    if (Array.isArray(this.scope.namespaces) && this.scope.namespaces.includes(toNamespace) && (toKind === undefined || toKind === this.kind)) {
      throw this.fail(`copies namespace '${toNamespace}' onto itself; scan other namespaces ({namespace}) or give a toKind.`);
    }
  }

  protected summary(): string {
    const kind = this.target.toKind && this.target.toKind !== this.kind ? ` as ${this.target.toKind}` : '';
    return `Copy every ${this.kind} entity into namespace '${this.toNamespace}'${kind}${this.copyOptions.overwriteExisting ? ', overwriting existing ones' : ''}`;
  }

  protected positional(): unknown[] {
    return [this.toNamespace];
  }

  protected args(): Record<string, unknown> {
    return { toNamespace: this.toNamespace, toKind: this.target.toKind, overwriteExisting: this.copyOptions.overwriteExisting };
  }

  override async namespaces(store: Datastore): Promise<string[]> {
    const all = await super.namespaces(store);
    // With '*', the target namespace is not a source of itself.
    return this.scope.namespaces === '*' && (this.target.toKind === undefined || this.target.toKind === this.kind) ? all.filter((n) => n !== this.toNamespace) : all;
  }
}
