import type { Datastore, Entity, Key, PropertyFilter } from '../datastore';
import { RESERVED_KIND_PREFIX } from '../control';
import { DsMigrateError } from '../errors';
import { kindOf, type FieldSpec } from '../model';
import type { ApplyContext, EntityDecision, ShardWork } from '../sharding';
import { jsonOf, showScope } from './describe';
import { parseScope, type ScanOptions, type Scope } from './options';

/** A check of one entity (and its related entities, read alongside): a problem, or undefined. */
export type Postcondition = (entity: Entity, related: readonly (Entity | undefined)[]) => string | undefined;

/** A kind name, or a model (anything with `.kind`; its `fields`, when present, let values be type-checked). */
export type KindOrModel = string | { readonly kind: string; readonly fields?: Readonly<Record<string, FieldSpec>> };

/**
 * The small base of the seven operations. An operation is a description (type, kind, arguments,
 * scope) plus one decision per entity; the shard engine does the scanning, batching, transactions
 * and checkpoints. Static arguments are checked when the operation is made; `validate` checks what
 * needs the data, and neither ever writes.
 */
export abstract class Operation implements ShardWork {
  readonly kind: string;
  readonly scope: Scope;
  /** The model's fields, when a model was given. */
  protected readonly fields?: Readonly<Record<string, FieldSpec>>;

  protected constructor(
    readonly type: string,
    /** As given, so that a reverse operation gets the same model. */
    protected readonly ref: KindOrModel,
    /** Its own options too: each operation's `reverse` option has its own type beside 'noop'. */
    protected readonly options: Omit<ScanOptions, 'reverse'> & { reverse?: unknown },
  ) {
    this.kind = kindOf(ref);
    this.checkNotReserved(this.kind);
    if (typeof ref === 'object' && ref.fields && typeof ref.fields === 'object') this.fields = ref.fields;
    this.scope = parseScope(options, { type, kind: this.kind });
    if (typeof options.reverse === 'string' && options.reverse !== 'noop')
      throw this.fail(`has reverse ${JSON.stringify(options.reverse)}; the only word it takes is 'noop' (back out leaving the data as it is).`);
  }

  get filters(): readonly PropertyFilter[] {
    return this.scope.filters;
  }
  get batchSize(): number {
    return this.scope.batchSize;
  }
  get skipErrors(): boolean {
    return this.scope.skipErrors;
  }

  /** One human line, for `dsmigrate plan`. */
  describe(): string {
    return `${this.summary()}${showScope(this.scope)}`;
  }

  /** Type and arguments as stable JSON (functions as source text), for checksums and `plan --json`. */
  toJSON(): Record<string, unknown> {
    return jsonOf({ type: this.type, kind: this.kind, ...this.noopOption(), ...this.args(), ...this.scanOptions() }) as Record<string, unknown>;
  }

  /**
   * What a stored run is checked against when it is resumed: toJSON without function bodies, which
   * differ between compilers (jest, tsx, the CLI) of the same migration file.
   */
  fingerprint(): string {
    return JSON.stringify(jsonOf({ type: this.type, kind: this.kind, ...this.noopOption(), ...this.args(), ...this.scanOptions() }, false));
  }

  private noopOption(): { reverse?: 'noop' } {
    return this.leavesDataOnBackOut ? { reverse: 'noop' } : {};
  }

  /** The scan options as given, for a reverse operation to keep the same scope. */
  protected scanOptions(): ScanOptions {
    const { namespace, filter, shardCount, batchSize, skipErrors, rate } = this.options;
    return { namespace, filter, shardCount, batchSize, skipErrors, rate };
  }

  /** Has an operation that undoes it (`reverse()`). */
  get reversible(): boolean {
    return false;
  }

  /** Declared `reverse: 'noop'`: backing out records it undone and leaves its data as it is, whatever reverse it has. */
  get leavesDataOnBackOut(): boolean {
    return this.options.reverse === 'noop';
  }

  /** The operation that undoes this one, or a BAD_INPUT error saying why there is none. */
  reverse(): Operation {
    throw this.irreversible();
  }

  protected irreversible(): DsMigrateError {
    return this.fail(`is irreversible: ${this.irreversibleBecause()}`);
  }

  /** Checks what needs the data: the namespaces exist as given and the filters name stored properties. Writes nothing. */
  async validate(store: Datastore): Promise<void> {
    const namespaces = await this.namespaces(store);
    for (const filter of this.scope.filters) await this.checkFilterProperty(store, namespaces, filter.property);
  }

  /** The namespaces to scan, '*' resolved. */
  async namespaces(store: Datastore): Promise<string[]> {
    if (this.scope.namespaces !== '*') return [...this.scope.namespaces];
    const all = await store.namespaces();
    if (!all) {
      throw this.fail(
        "namespace '*' needs a backend that lists namespaces, and this one does not (the Firestore-mode emulator answers no metadata queries). List them: {namespace: ['', 'tenant-a', ...]}.",
      );
    }
    return all;
  }

  /**
   * Whether a rate without `rampUp` ramps up (500/50/5), asked once when the job is planned: for
   * operations that write a kind that is empty at their start.
   */
  async rampsByDefault(_store: Datastore): Promise<boolean> {
    return false;
  }

  /**
   * What must hold of every entity the operation scans once it has run (`dsmigrate verify`): the
   * check returns a problem to report, or undefined. Undefined when the operation cannot tell (a map
   * function without a declared `verify`).
   */
  get postcondition(): Postcondition | undefined {
    return undefined;
  }

  relatedKeys(_key: Key): readonly Key[] {
    return [];
  }

  /** Unknown here: an operation that decides on a few named properties says which (see ShardWork). */
  get touchedProperties(): readonly string[] | undefined {
    return undefined;
  }

  /** These properties and the filters' (which are checked again on every entity read). */
  protected touching(...names: string[]): readonly string[] {
    return [...new Set([...names, ...this.scope.filters.map((f) => f.property)])];
  }

  abstract apply(entity: Entity, related: readonly (Entity | undefined)[], context: ApplyContext): EntityDecision | Promise<EntityDecision>;

  /** The line `describe` starts with, e.g. `Set Person.colour to "blue" where missing`. */
  protected abstract summary(): string;
  /** The operation's own arguments, for toJSON. */
  protected abstract args(): Record<string, unknown>;

  protected irreversibleBecause(): string {
    return 'there is no way to tell what the data was before it ran.';
  }

  /** Property names: non-empty, and not reserved (`__name__`). */
  protected checkName(name: unknown, role = 'property'): void {
    if (typeof name !== 'string' || !name || /^__.*__$/.test(name)) throw this.fail(`needs a ${role} name, not ${JSON.stringify(name)}.`);
  }

  /** The tool's own kinds (records, lease, checkpoints, markers) change only through the tool: a migration that scanned or wrote them could break the very run it belongs to. */
  protected checkNotReserved(kind: string, role = 'kind'): void {
    if (kind.startsWith(RESERVED_KIND_PREFIX)) {
      throw new DsMigrateError(
        'BAD_INPUT',
        `${this.type} cannot take ${kind} as its ${role}: kinds starting with ${RESERVED_KIND_PREFIX} belong to datastore-migrate itself. Name one of the application's kinds.`,
        {
          kind,
          operation: this.type,
        },
      );
    }
  }

  protected fail(message: string, context: Record<string, unknown> = {}): DsMigrateError {
    return new DsMigrateError('BAD_INPUT', `${this.type} on ${this.kind} ${message}`, { kind: this.kind, operation: this.type, ...context });
  }

  /**
   * A filter on a property that no entity has (or has only unindexed) would silently match nothing.
   * With a model the field must exist; without one, some entity must hold the property indexed, unless
   * the kind is empty.
   */
  private async checkFilterProperty(store: Datastore, namespaces: readonly string[], property: string): Promise<void> {
    if (this.fields) {
      if (!(property in this.fields)) throw this.fail(`filters on "${property}", which is not a field of the model (fields: ${Object.keys(this.fields).join(', ')}).`, { field: property });
      return;
    }
    let empty = true;
    for (const namespace of namespaces) {
      if (await this.any(store, namespace, [{ property, op: '>=', value: null }])) return;
      if (empty && (await this.any(store, namespace, []))) empty = false;
    }
    if (!empty) {
      throw this.fail(`filters on "${property}", but no ${this.kind} entity has that property indexed (misspelt? unindexed properties cannot be filtered on).`, { field: property });
    }
  }

  private async any(store: Datastore, namespace: string, filters: PropertyFilter[]): Promise<boolean> {
    for await (const keys of store.keys({ kind: this.kind, namespace, filters, limit: 1 })) if (keys.length > 0) return true;
    return false;
  }
}
