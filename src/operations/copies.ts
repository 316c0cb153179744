import type { Datastore, Entity, Key } from '../datastore';
import type { EntityDecision } from '../sharding';
import { DataOperation, type KindOrModel, type Postcondition } from './data-operation';
import type { ScanOptions } from './options';

/** Where a copy goes: the same path (ids, names, ancestors), with the leaf kind and/or namespace changed. */
export interface CopyTarget {
  toKind?: string;
  toNamespace?: string;
}

export function targetKey(key: Key, target: CopyTarget): Key {
  const moved = target.toNamespace === undefined ? key : key.withNamespace(target.toNamespace);
  return target.toKind === undefined ? moved : moved.withKind(target.toKind);
}

export interface CopyOptions extends ScanOptions {
  /** Replace entities already at the target keys (by default they are left alone and counted as skipped). */
  overwriteExisting?: boolean;
}

/**
 * The shared body of CopyModelData and CopyModelDataToNamespace: each entity is copied byte for byte
 * to its target key, which is read in the same transaction so that an existing target is not
 * overwritten by accident; integer ids are reserved in the target so that new allocations cannot
 * collide; a target whose parent is missing (another namespace) is reported.
 */
export abstract class CopyOperation extends DataOperation {
  protected constructor(
    type: string,
    kind: KindOrModel,
    protected readonly target: CopyTarget,
    protected readonly copyOptions: CopyOptions,
  ) {
    super(type, kind, copyOptions);
    if (target.toKind !== undefined) this.checkNotReserved(target.toKind, 'target kind');
  }

  override relatedKeys(key: Key): readonly Key[] {
    const target = targetKey(key, this.target);
    // The parent only matters in another namespace; same-namespace copies share the source's ancestors.
    return this.target.toNamespace !== undefined && target.parent ? [target, target.parent] : [target];
  }

  async prepareBatch(store: Datastore, keys: readonly Key[]): Promise<void> {
    await store.reserveIds(keys.map((k) => targetKey(k, this.target)).filter((k) => k.id !== undefined));
  }

  override get reversible(): boolean {
    return true;
  }

  /** A copy into a kind that holds nothing yet, in every target namespace: traffic Datastore wants ramped up to. */
  override async rampsByDefault(store: Datastore): Promise<boolean> {
    for (const namespace of await this.namespaces(store)) {
      for await (const keys of store.keys({ kind: this.target.toKind ?? this.kind, namespace: this.target.toNamespace ?? namespace, limit: 1 })) {
        if (keys.length > 0) return false;
      }
    }
    return true;
  }

  /** Deletes the target key of every source entity: the copies this operation made. */
  override reverse(): DataOperation {
    return new DeleteCopiedData(this.ref, this.target, this.scanOptions());
  }

  /** Every source has its copy at the same key path. */
  override get postcondition(): Postcondition {
    return (entity, [copy]) => (copy ? undefined : `has no copy at ${targetKey(entity.key, this.target)}`);
  }

  apply(entity: Entity, related: readonly (Entity | undefined)[]): EntityDecision {
    const [existing, parent] = related;
    if (existing && !this.copyOptions.overwriteExisting) return { action: 'skip' };
    const copy = entity.copy(targetKey(entity.key, this.target));
    const orphan = this.target.toNamespace !== undefined && copy.key.parent !== undefined && parent === undefined;
    return { action: 'put', entity: copy, warning: orphan ? { topic: `Parent missing in namespace '${this.target.toNamespace}'`, key: copy.key } : undefined };
  }
}

/**
 * The reverse of a copy: scans the source kind and deletes each entity's target key. A target that
 * already existed before the copy (and was kept, without overwriteExisting) is deleted too.
 */
export class DeleteCopiedData extends DataOperation {
  constructor(
    kind: KindOrModel,
    private readonly target: CopyTarget,
    options: ScanOptions = {},
  ) {
    super('DeleteCopiedData', kind, options);
  }

  protected summary(): string {
    const where = [this.target.toKind && `kind ${this.target.toKind}`, this.target.toNamespace !== undefined && `namespace '${this.target.toNamespace}'`].filter(Boolean).join(' in ');
    return `Delete the copies of ${this.kind} entities in ${where}`;
  }

  protected positional(): unknown[] {
    return [this.target];
  }

  protected args(): Record<string, unknown> {
    return { ...this.target };
  }

  override relatedKeys(key: Key): readonly Key[] {
    return [targetKey(key, this.target)];
  }

  apply(_entity: Entity, related: readonly (Entity | undefined)[]): EntityDecision {
    return related[0] ? { action: 'delete', key: related[0].key } : { action: 'skip' };
  }
}
