import type { Datastore, Entity, Key, PropertyFilter } from '../datastore';
import { RESERVED_KIND_PREFIX, type JobRef } from '../control';
import { DsMigrateError } from '../errors';
import { kindOf, type FieldSpec } from '../model';
import { forgetImagesKept, markImagesKept, operationOfJob, type ApplyContext, type EntityDecision, type KeyRange, type ShardWork, type UndoSpec } from '../sharding';
import { showScope } from './describe';
import { Operation } from './operation';
import { parseScope, type ScanOptions, type Scope } from './options';

/** A check of one entity (and its related entities, read alongside): a problem, or undefined. */
export type Postcondition = (entity: Entity, related: readonly (Entity | undefined)[]) => string | undefined;

/** A kind name, or a model (anything with `.kind`; its `fields`, when present, let values be type-checked). */
export type KindOrModel = string | { readonly kind: string; readonly fields?: Readonly<Record<string, FieldSpec>> };

/**
 * The base of the seven data operations. A data operation is a description (type, kind, arguments,
 * scope) plus one decision per entity; the shard engine does the scanning, batching, transactions
 * and checkpoints. Static arguments are checked when the operation is made; `validate` checks what
 * needs the data, and neither ever writes.
 */
export abstract class DataOperation extends Operation implements ShardWork {
  readonly kind: string;
  readonly scope: Scope;
  /** The model's fields, when a model was given. */
  protected readonly fields?: Readonly<Record<string, FieldSpec>>;
  private projectUndo?: UndoSpec;

  protected constructor(
    type: string,
    /** As given, so that a reverse operation gets the same model. */
    protected readonly ref: KindOrModel,
    options: Omit<ScanOptions, 'reverse'> & { reverse?: unknown },
  ) {
    const kind = kindOf(ref);
    super(type, { name: `on ${kind}`, context: { kind } }, options);
    this.kind = kind;
    this.checkNotReserved(this.kind);
    if (typeof ref === 'object' && ref.fields && typeof ref.fields === 'object') this.fields = ref.fields;
    this.scope = parseScope(options, { type, kind: this.kind });
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

  override describe(): string {
    return `${this.summary()}${showScope({ ...this.scope, undo: this.undo })}`;
  }

  /** The kind (or model) as given, the arguments between it and the options (`positional`), and the options as given. */
  deconstruct(): unknown[] {
    return [this.ref, ...this.positional(), this.options];
  }

  /** The constructor's arguments between the kind and the options, e.g. AddFieldData's field name. */
  protected abstract positional(): unknown[];

  /** With the before-images it keeps, its own or the project's: a job laid out with one and resumed with another is refused (src/sharding/layouts.ts). */
  protected override shape(): Record<string, unknown> {
    return { ...super.shape(), kind: this.kind, ...this.scanOptions(), ...(this.undo ? { undo: this.undo.retain } : {}) };
  }

  /** Before-images are kept (`undo`), going forward only: a reverse operation is made without it (scanOptions). */
  get undo(): UndoSpec | undefined {
    return this.scope.undo ?? this.projectUndo;
  }

  /**
   * Keeps before-images as the project says (`undo` in dsmigrate.config, applied when the migrations are
   * loaded), unless the operation's own `undo` option says otherwise. The file, and so its checksum, is unchanged.
   */
  keepBeforeImages(spec: UndoSpec): void {
    if ((this.options as ScanOptions).undo === undefined) this.projectUndo = spec;
  }

  /** Backs out by restoring its before-images (src/operations/restore-before-images.ts): kept with `undo`, and no reverse declared. */
  get restoresBeforeImages(): boolean {
    return this.undo !== undefined && this.options.reverse === undefined;
  }

  /** The ranges of its scanned kind a job covers, for a job over `todo` of the operation's coverage (undefined: all of it). */
  jobBounds(todo: readonly KeyRange[] | undefined, _namespaces: readonly string[], _job: JobRef): readonly KeyRange[] | undefined {
    return todo;
  }

  /** Checks (and readies) what a step's job needs once it is allotted, before it runs; writes no application data. */
  async beforeJob(store: Datastore, job: JobRef): Promise<void> {
    // Noted before any image is written, and forgotten by a job that keeps none: a back-out refuses an
    // operation that kept none this time, rather than restore nothing (or what an earlier application kept).
    if (this.undo) await markImagesKept(store, operationOfJob(job), await this.namespaces(store));
    else await forgetImagesKept(store, operationOfJob(job), await this.namespaces(store));
  }

  /** The scan options as given, for a reverse operation to keep the same scope. */
  protected scanOptions(): ScanOptions {
    const { namespace, filter, shardCount, batchSize, skipErrors, rate } = this.options as ScanOptions;
    return { namespace, filter, shardCount, batchSize, skipErrors, rate };
  }

  /** Checks what needs the data: the namespaces exist as given and the filters name stored properties. Writes nothing. */
  override async validate(store: Datastore): Promise<void> {
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

/**
 * Whether an operation scans a kind in shards (else it runs once). By shape rather than instanceof: a
 * migration file may hold another copy of the classes (a test's module registry, a second install).
 */
export function isDataOperation(operation: Operation): operation is DataOperation {
  const candidate = operation as Partial<DataOperation>;
  return typeof candidate.apply === 'function' && typeof candidate.relatedKeys === 'function' && typeof candidate.namespaces === 'function' && typeof candidate.scope === 'object';
}
