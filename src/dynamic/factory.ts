import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import { GrpcCode, grpcCode, type Datastore, type Entity } from '../datastore';
import { DsMigrateError } from '../errors';
import type { Executor, RunEvent } from '../migrations';
import { diffDefinitions, registerModel, type Model, type SchemaDiff } from '../model';
import { buildModel, buildTransitionalModel } from './build-model';
import type { ConverterFunction } from './converters';
import { definitionHash, normalizeDefinition, type DefinitionInput, type FieldInput, type ModelDefinition } from './definition';
import { SchemaMigrations, type ApplyOptions } from './schema-migrations';
import type { SchemaCloudTasks } from './schema-run';
import { DEFAULT_RETENTION_MS, deletionOrphan, planSchemaChange, type Orphan, type SchemaPlan } from './schema-plan';
import { DEFINITION_KIND, DefinitionStore, type StoredSchemaMigration, type VersionExtras } from './store';

export const DEFAULT_STALENESS_MS = 10;

export interface ModelFactoryOptions {
  /**
   * How long a checked model is served from the cache before the next get looks its definition up
   * again. 0 checks on every get. Default 10 ms.
   */
  stalenessMs?: number;
  /** The namespace holding the definitions, and the default namespace of their models. Default ''. */
  namespace?: string;
  /** Recorded as updatedBy on what this factory writes. Default `host:pid`. */
  updatedBy?: string;
  /** A monotonic clock in milliseconds, for the staleness bound. Default performance.now. */
  clock?: () => number;
  /** Also register each generated model by kind (as defineModel does), replacing its previous version. Default true. */
  register?: boolean;
  /** Where schema migrations are recorded and leased, as `dsmigrate migrate --control-namespace`. Default ''. */
  controlNamespace?: string;
  /** Runs schema migrations' shards. Default a LocalExecutor. */
  executor?: Executor;
  /**
   * Run schema migrations (and cleanups) as Cloud Tasks runs, as `migrate --executor cloud-tasks`: the
   * worker (`dsmigrate worker`, or startWorker) rebuilds each plan's operations from what is stored.
   * A plan with a forced conversion's function cannot run there and is refused. Default: locally, with `executor`.
   */
  cloudTasks?: SchemaCloudTasks;
  /** Entities per transaction in schema migrations. Default the operations' own (499). */
  schemaBatchSize?: number;
  /** How long a schema run waits for another run's lease before LEASE_HELD. Default 30 s. */
  lockWaitMs?: number;
  /**
   * The time to live of the lease a schema run holds (renewed while it runs), as `lockTtlSeconds`: how
   * long the next run waits after a process died holding it. At least 1 s. Default the runner's (60 s).
   */
  lockTtlMs?: number;
}

/** A change for update(): the fields given replace the current ones, in their order. */
export interface DefinitionChange {
  readonly kind?: string;
  readonly fields?: readonly FieldInput[];
}

export interface UpdateOptions {
  /** Fail with CONFLICT unless the stored version is this one when the update starts. */
  expectedVersion?: number;
  /**
   * Converters for type changes no built-in converter covers, by field name (in the new definition).
   * Used only with `force: true`; the plan then waits for approval, and this process keeps the functions
   * for reads and for applyPendingSchema.
   */
  converters?: Readonly<Record<string, ConverterFunction>>;
  force?: boolean;
  /** Run the plan now when it needs no approval (and every earlier one has run). Default false. */
  autoApply?: boolean;
  onEvent?: (event: RunEvent) => void;
}

/** A definition as `list` shows it. */
export interface DefinitionSummary {
  name: string;
  kind: string;
  version: number;
  /** The version whose schema plans (and every earlier one's) have run. */
  appliedVersion: number;
  deleted: boolean;
  orphans: Orphan[];
}

/** A schema migration as the API and `dsmigrate schema plan` show it. */
export interface SchemaMigrationView extends StoredSchemaMigration {
  id: string;
}

export interface DefinedModel {
  model: Model;
  definition: ModelDefinition;
}

export interface DefinitionChangedEvent {
  name: string;
  /** What this process had before; undefined when it defined the model itself. */
  previous: ModelDefinition | undefined;
  current: ModelDefinition;
  diff: SchemaDiff;
  model: Model;
  /** 'local': this factory made the change; 'remote': a check found it. */
  origin: 'local' | 'remote';
}

export interface ModelFactoryEvents {
  definitionChanged: [DefinitionChangedEvent];
}

interface CacheEntry {
  definition: ModelDefinition;
  model: Model;
  /** Handed out by the fast path, so that a cached get allocates nothing. */
  resolved: Promise<Model>;
  /** When the check that confirmed this entry started, on the factory's clock. */
  checkedAt: number;
  /** The version whose plans have all run: below the definition's, the model reads through fallbacks. */
  appliedVersion: number;
}

interface InFlight {
  startedAt: number;
  done: Promise<CacheEntry>;
}

const CHANGE_ATTRIBUTES = new Set(['kind', 'fields']);

/**
 * Models defined at run time from definitions stored in Datastore. Each factory keeps the models it
 * has built; a get serves one from the cache until the staleness bound passes, then confirms it with one
 * key lookup of its definition (version and hash) and rebuilds it when the definition changed.
 * define() and update() compare and set: each writes version n+1 only if nobody wrote it yet, so a
 * writer that prepared its change from an older version fails with CONFLICT instead of overwriting a
 * newer definition (two processes updating one model at once: the slower one must not win).
 */
export class ModelFactory extends EventEmitter<ModelFactoryEvents> {
  readonly namespace: string;
  readonly stalenessMs: number;
  private readonly definitions: DefinitionStore;
  private readonly clock: () => number;
  private readonly updatedBy: string;
  private readonly register: boolean;
  private readonly cache = new Map<string, CacheEntry>();
  private readonly inFlight = new Map<string, InFlight>();
  /** Forced conversions' functions this process was given, by definition and field name. */
  private readonly converters = new Map<string, Readonly<Record<string, ConverterFunction>>>();
  private readonly schema: SchemaMigrations;

  constructor(store: Datastore, options: ModelFactoryOptions = {}) {
    super();
    const stalenessMs = options.stalenessMs ?? DEFAULT_STALENESS_MS;
    if (!(stalenessMs >= 0)) throw new DsMigrateError('BAD_INPUT', `stalenessMs must be 0 or more, not ${stalenessMs}.`);
    this.stalenessMs = stalenessMs;
    this.namespace = options.namespace ?? '';
    this.definitions = new DefinitionStore(store, this.namespace);
    this.clock = options.clock ?? (() => performance.now());
    this.updatedBy = options.updatedBy ?? `${hostname()}:${process.pid}`;
    this.register = options.register ?? true;
    this.schema = new SchemaMigrations(this.definitions, {
      store,
      namespace: this.namespace,
      controlNamespace: options.controlNamespace ?? '',
      executor: options.executor,
      cloudTasks: options.cloudTasks,
      batchSize: options.schemaBatchSize,
      lockWaitMs: options.lockWaitMs ?? 30_000,
      lockTtlMs: options.lockTtlMs,
    });
  }

  /** The current model of a definition: from the cache within the staleness bound, else after one lookup. */
  get(name: string): Promise<Model> {
    const entry = this.cache.get(name);
    if (entry !== undefined && this.clock() - entry.checkedAt < this.stalenessMs) return entry.resolved;
    return this.check(name).then(modelOf);
  }

  /** The current definition, under the same staleness bound as get(). */
  async getDefinition(name: string): Promise<ModelDefinition> {
    const entry = this.cache.get(name);
    if (entry !== undefined && this.clock() - entry.checkedAt < this.stalenessMs) return entry.definition;
    return (await this.check(name)).definition;
  }

  /**
   * Stores a new definition at version 1. Defining it again with the same hash returns the stored one
   * (so every process may define its models at start-up); with another hash it is a CONFLICT.
   */
  async define(input: DefinitionInput): Promise<DefinedModel> {
    const { shape, nextFieldId } = normalizeDefinition(input);
    buildModel(shape, this.namespace);
    const hash = definitionHash(shape);
    const startedAt = this.clock();
    const read = await this.definitions.readWithState(shape.name);
    let existing = read.head;
    const tombstone = existing && this.definitions.head(existing).deleted ? existing : undefined;
    if (existing === undefined || tombstone !== undefined) {
      // Defined again after a delete: the next version, so that no version number is ever reused; its kind's data is no longer orphaned.
      const version = tombstone ? this.definitions.head(tombstone).version + 1 : 1;
      const orphans = tombstone ? this.definitions.orphans(tombstone).filter((o) => !(o.type === 'kind' && o.kind === shape.kind)) : [];
      const definition: ModelDefinition = { ...shape, version, hash, updatedAt: new Date(), updatedBy: this.updatedBy, nextFieldId };
      const outcome = await this.commit(definition, { orphans, appliedVersion: version, fallbackVersion: 0 });
      if (outcome.committed) return this.committed(definition, startedAt, version);
      existing = outcome.current;
    }
    const stored = this.requireStored(shape.name, existing);
    const head = this.definitions.head(stored);
    if (head.hash !== hash) {
      throw new DsMigrateError('CONFLICT', `Model definition "${shape.name}" already exists at version ${head.version} with another hash; change it with update().`, {
        model: shape.name,
        namespace: this.namespace,
        expectedVersion: 0,
        actualVersion: head.version,
      });
    }
    return this.result(await this.accept(this.definitions.decode(stored), startedAt, 'remote', this.definitions.readableVersion(stored, read.appliedVersion)));
  }

  /**
   * Changes a stored definition. `change` is computed from the latest stored version (read first, one
   * lookup), and the result is written as the next version only if no other writer wrote that version
   * meanwhile. Otherwise it throws CONFLICT (context: expectedVersion, actualVersion): read again and
   * retry. A change that leaves the hash as it is writes nothing.
   */
  async update(name: string, change: DefinitionChange | ((current: ModelDefinition) => DefinitionChange | Promise<DefinitionChange>), options: UpdateOptions = {}): Promise<DefinedModel> {
    const startedAt = this.clock();
    const read = await this.definitions.readWithState(name);
    const headEntity = this.requireStored(name, read.head);
    const readable = this.definitions.readableVersion(headEntity, read.appliedVersion);
    const current = await this.accept(this.definitions.decode(headEntity), startedAt, 'remote', readable);
    const base = current.definition;
    if (options.expectedVersion !== undefined && options.expectedVersion !== base.version) {
      throw conflict(name, this.namespace, options.expectedVersion, base.version);
    }
    const requested = typeof change === 'function' ? await change(base) : change;
    for (const key of Object.keys(requested ?? {})) {
      if (!CHANGE_ATTRIBUTES.has(key)) throw new DsMigrateError('MODEL_DEFINITION', `Model definition "${name}": a change may set kind and fields, not "${key}".`, { model: name });
    }
    const { shape, nextFieldId } = normalizeDefinition({ name, kind: requested.kind ?? base.kind, fields: requested.fields ?? base.fields }, base);
    buildModel(shape, this.namespace);
    const hash = definitionHash(shape);
    if (hash === base.hash) return this.result(current);

    const converters = options.converters ?? {};
    for (const [field, fn] of Object.entries(converters)) {
      if (typeof fn !== 'function') throw new DsMigrateError('BAD_INPUT', `Model definition "${name}": the converter for field "${field}" is not a function.`, { model: name, field });
    }
    // Refused conversions and name clashes with orphaned data throw here, before anything is written.
    const orphans = this.definitions.orphans(headEntity);
    const version = base.version + 1;
    const plan = planSchemaChange({ before: base, after: shape, fromVersion: base.version, toVersion: version, orphans, now: new Date(), converted: Object.keys(converters), force: options.force });
    const definition: ModelDefinition = { ...shape, version, hash, updatedAt: new Date(), updatedBy: this.updatedBy, nextFieldId };
    if (Object.keys(converters).length > 0) this.converters.set(name, { ...this.converters.get(name), ...converters });
    const movesData = plan.steps.some((step) => step.type === 'CopyModelData' || step.type === 'CopyFieldData' || step.type === 'ConvertField');
    const fallbackVersion = movesData ? version : this.definitions.head(headEntity).fallbackVersion;
    const status = plan.steps.length === 0 ? 'applied' : plan.needsApproval ? 'pending' : 'approved';
    const outcome = await this.commit(definition, { orphans: carry(orphans, plan), fallbackVersion, migration: { plan, status, createdAt: new Date() } });
    if (!outcome.committed) {
      throw conflict(name, this.namespace, base.version, this.definitions.head(this.requireStored(name, outcome.current)).version);
    }
    const result = await this.committed(definition, startedAt, fallbackVersion > read.appliedVersion ? read.appliedVersion : version);
    if (options.autoApply && !plan.needsApproval) {
      await this.applyPendingSchema(name, { version, onEvent: options.onEvent });
      return { definition, model: await this.get(name) };
    }
    return result;
  }

  /**
   * Deletes a definition: its models can no longer be had, its data is kept and its kind recorded as
   * orphaned (for `cleanup` once the retention has passed). The head stays as a tombstone at a new
   * version, so a slow writer can never bring an old version back. Refused while a plan has not run.
   */
  async delete(name: string, options: { expectedVersion?: number } = {}): Promise<void> {
    const read = await this.definitions.readWithState(name);
    const head = this.requireStored(name, read.head);
    const base = this.definitions.decode(head);
    if (options.expectedVersion !== undefined && options.expectedVersion !== base.version) throw conflict(name, this.namespace, options.expectedVersion, base.version);
    const waiting = (await this.schemaMigrations(name)).filter((m) => m.status !== 'applied');
    if (waiting.length > 0) {
      throw new DsMigrateError('CONFLICT', `Model definition "${name}" cannot be deleted while its schema migration to version ${waiting[0].plan.toVersion} has not run; apply it first.`, {
        model: name,
        version: waiting[0].plan.toVersion,
      });
    }
    const version = base.version + 1;
    const definition: ModelDefinition = { ...base, version, updatedAt: new Date(), updatedBy: this.updatedBy };
    // A kind another definition still reads is not orphaned: cleanup would delete that definition's data.
    const shared = (await this.definitions.listHeads()).some((h) => h.key.path[0].name !== name && !this.definitions.head(h).deleted && h.get('kind') === base.kind);
    const orphans = [...this.definitions.orphans(head), ...(shared ? [] : [deletionOrphan(base, version, new Date())])];
    const outcome = await this.commit(definition, { orphans, deleted: true, appliedVersion: version, fallbackVersion: 0 });
    if (!outcome.committed) throw conflict(name, this.namespace, base.version, this.definitions.head(this.requireStored(name, outcome.current)).version);
    this.cache.delete(name);
  }

  /** Every definition in the namespace, deleted ones included (flagged), with their orphans. */
  async list(): Promise<DefinitionSummary[]> {
    const out: DefinitionSummary[] = [];
    for (const head of await this.definitions.listHeads()) {
      const definition = this.definitions.decode(head);
      const { appliedVersion } = await this.definitions.readWithState(definition.name);
      out.push({ name: definition.name, kind: definition.kind, version: definition.version, appliedVersion, deleted: this.definitions.head(head).deleted, orphans: this.definitions.orphans(head) });
    }
    return out;
  }

  /** The schema migrations of a definition (or of every definition), oldest first. */
  schemaMigrations(name?: string): Promise<SchemaMigrationView[]> {
    return this.schema.list(name);
  }

  /** Approves a plan that needs approval (lossy or forced steps); it then runs with applyPendingSchema. */
  approveSchema(name: string, version: number, options: { approvedBy?: string } = {}): Promise<SchemaMigrationView> {
    return this.schema.approve(name, version, options.approvedBy ?? this.updatedBy);
  }

  /**
   * Runs a definition's schema migrations in version order, each through the migrations runner (under
   * the control namespace's lease, recorded, resumed after a crash), up to `version` (default: all that
   * may run). A plan waiting for approval stops the run there; asking for a version at or past it is a
   * BAD_INPUT error naming it, and nothing runs. The model is rebuilt without fallbacks once done.
   */
  async applyPendingSchema(name: string, options: ApplyOptions = {}): Promise<SchemaPlan[]> {
    const ran = await this.schema.apply(name, { ...options, converters: { ...this.converters.get(name), ...options.converters }, approvedBy: this.updatedBy });
    this.inFlight.delete(name);
    const entry = this.cache.get(name);
    if (entry) entry.checkedAt = -Infinity;
    return ran;
  }

  /**
   * Removes orphaned properties and kinds whose retention has passed (default 30 days), through the
   * migrations runner; never data a current definition uses (refused, naming it). `dryRun` lists only.
   */
  cleanupSchema(options: { olderThanMs?: number; dryRun?: boolean; now?: Date; onEvent?: (event: RunEvent) => void } = {}): Promise<Orphan[]> {
    return this.schema.cleanup({
      olderThanMs: options.olderThanMs ?? DEFAULT_RETENTION_MS,
      dryRun: options.dryRun ?? false,
      now: options.now ?? new Date(),
      onEvent: options.onEvent,
      updatedBy: this.updatedBy,
    });
  }

  /** The definition as it was at a version: one lookup. */
  async definitionAt(name: string, version: number): Promise<ModelDefinition> {
    const entity = await this.definitions.readVersion(name, version);
    if (entity === undefined) {
      throw new DsMigrateError('UNKNOWN_KIND', `Model definition "${name}" has no version ${version}.`, { model: name, namespace: this.namespace, version });
    }
    return this.definitions.decode(entity);
  }

  /**
   * Writes the definition's version. When another writer got there first, `current` is the head it left.
   * ALREADY_EXISTS may also answer the retry of our own commit that landed but answered an error (an
   * unknown outcome): the version entity is then this write's (DefinitionStore.isOwnVersion), whatever the
   * head says (another writer may have moved it on meanwhile).
   */
  private async commit(definition: ModelDefinition, extras: VersionExtras): Promise<{ committed: true } | { committed: false; current: Entity | undefined }> {
    try {
      await this.definitions.insertVersion(definition, extras);
      return { committed: true };
    } catch (error) {
      if (grpcCode(error) !== GrpcCode.ALREADY_EXISTS) throw error;
      const [ours, current] = await Promise.all([this.definitions.isOwnVersion(definition), this.definitions.read(definition.name)]);
      return ours ? { committed: true } : { committed: false, current };
    }
  }

  private result(entry: CacheEntry): DefinedModel {
    return { model: entry.model, definition: entry.definition };
  }

  /** What this factory wrote, even when a get has meanwhile cached a newer version by another writer. */
  private async committed(definition: ModelDefinition, startedAt: number, appliedVersion: number): Promise<DefinedModel> {
    const entry = await this.accept(definition, startedAt, 'local', appliedVersion);
    return { definition, model: entry.definition.hash === definition.hash ? entry.model : await this.build(definition, appliedVersion) };
  }

  /** The plain model once every plan up to the definition has run; until then one that reads unmigrated entities correctly. */
  private async build(definition: ModelDefinition, appliedVersion: number): Promise<Model> {
    if (appliedVersion >= definition.version) return buildModel(definition, this.namespace);
    const applied = await this.definitionAt(definition.name, appliedVersion);
    return buildTransitionalModel(definition, this.namespace, { applied, appliedVersion, currentVersion: definition.version, converters: this.converters.get(definition.name) ?? {} });
  }

  /** One check per name at a time; a check started longer ago than the bound is not shared. */
  private check(name: string): Promise<CacheEntry> {
    const now = this.clock();
    const running = this.inFlight.get(name);
    if (running !== undefined && now - running.startedAt < this.stalenessMs) return running.done;
    const done = this.refresh(name, now).finally(() => {
      if (this.inFlight.get(name)?.done === done) this.inFlight.delete(name);
    });
    this.inFlight.set(name, { startedAt: now, done });
    return done;
  }

  private async refresh(name: string, startedAt: number): Promise<CacheEntry> {
    const read = await this.definitions.readWithState(name);
    const entity = this.requireStored(name, read.head);
    const cached = this.cache.get(name);
    const head = this.definitions.head(entity);
    // The common case: nothing changed, so nothing is parsed or built.
    if (
      cached !== undefined &&
      cached.definition.version === head.version &&
      cached.definition.hash === head.hash &&
      cached.appliedVersion === this.definitions.readableVersion(entity, read.appliedVersion)
    ) {
      cached.checkedAt = Math.max(cached.checkedAt, startedAt);
      return cached;
    }
    return this.accept(this.definitions.decode(entity), startedAt, 'remote', this.definitions.readableVersion(entity, read.appliedVersion));
  }

  /**
   * Takes a definition read or written at `startedAt` into the cache. Versions only move forward, so a
   * slow read that returns after a newer one changes nothing; the model is rebuilt only when the hash
   * changed, and only then is definitionChanged emitted.
   */
  private async accept(definition: ModelDefinition, startedAt: number, origin: 'local' | 'remote', appliedVersion: number): Promise<CacheEntry> {
    const fresh = (entry: CacheEntry): boolean => definition.version < entry.definition.version || (definition.version === entry.definition.version && appliedVersion <= entry.appliedVersion);
    let cached = this.cache.get(definition.name);
    if (cached !== undefined && fresh(cached)) {
      if (definition.version === cached.definition.version) cached.checkedAt = Math.max(cached.checkedAt, startedAt);
      return cached;
    }
    if (cached !== undefined && cached.definition.hash === definition.hash && cached.appliedVersion === appliedVersion) {
      cached.definition = definition;
      cached.checkedAt = Math.max(cached.checkedAt, startedAt);
      return cached;
    }
    const model = await this.build(definition, appliedVersion);
    // Building may have read: a newer entry accepted meanwhile wins.
    cached = this.cache.get(definition.name);
    if (cached !== undefined && fresh(cached)) return cached;
    if (this.register) registerModel(model);
    const entry: CacheEntry = { definition, model, resolved: Promise.resolve(model), checkedAt: startedAt, appliedVersion };
    if (cached !== undefined && cached.definition.hash === definition.hash) {
      // Only the plans moved on (the fallbacks stop): a new model, but no definition change to announce.
      this.cache.set(definition.name, entry);
      return entry;
    }
    this.cache.set(definition.name, entry);
    if (cached !== undefined || origin === 'local') {
      const previous = cached?.definition;
      this.emit('definitionChanged', { name: definition.name, previous, current: definition, diff: diffDefinitions(previous, definition), model, origin });
    }
    return entry;
  }

  private requireStored(name: string, entity: Entity | undefined): Entity {
    if (entity !== undefined && !this.definitions.head(entity).deleted) return entity;
    this.cache.delete(name);
    throw new DsMigrateError(
      'UNKNOWN_KIND',
      `No model definition named "${name}" is stored (kind ${DEFINITION_KIND}, namespace ${JSON.stringify(this.namespace)}); define it first with ModelFactory.define().`,
      { model: name, kind: DEFINITION_KIND, namespace: this.namespace },
    );
  }
}

/** The orphans after a plan: earlier ones it did not bring back, and its own. */
function carry(orphans: readonly Orphan[], plan: SchemaPlan): Orphan[] {
  return [...orphans.filter((o) => !plan.restored.includes(o.id)), ...plan.orphans];
}

function modelOf(entry: CacheEntry): Model {
  return entry.model;
}

function conflict(name: string, namespace: string, expectedVersion: number, actualVersion: number): DsMigrateError {
  return new DsMigrateError(
    'CONFLICT',
    `Model definition "${name}" changed after version ${expectedVersion}, which this change started from (stored: version ${actualVersion}); read it again and retry.`,
    { model: name, namespace, expectedVersion, actualVersion },
  );
}
