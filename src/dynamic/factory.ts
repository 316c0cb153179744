import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import { GrpcCode, grpcCode, type Datastore, type Entity } from '../datastore';
import { DsMigrateError } from '../errors';
import { registerModel, type Model } from '../model';
import { buildModel } from './build-model';
import { definitionHash, normalizeDefinition, type DefinitionInput, type FieldInput, type ModelDefinition } from './definition';
import { diffDefinitions, type SchemaDiff } from './schema-diff';
import { DEFINITION_KIND, DefinitionStore } from './store';

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
}

/** A change for update(): the fields given replace the current ones, in their order. */
export interface DefinitionChange {
  readonly kind?: string;
  readonly fields?: readonly FieldInput[];
}

export interface UpdateOptions {
  /** Fail with CONFLICT unless the stored version is this one when the update starts. */
  expectedVersion?: number;
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
 * newer definition (the race of seed 000).
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
    let existing = await this.definitions.read(shape.name);
    if (existing === undefined) {
      const definition: ModelDefinition = { ...shape, version: 1, hash, updatedAt: new Date(), updatedBy: this.updatedBy, nextFieldId };
      const outcome = await this.commit(definition);
      if (outcome.committed) return this.committed(definition, startedAt);
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
    return this.result(this.accept(this.definitions.decode(stored), startedAt, 'remote'));
  }

  /**
   * Changes a stored definition. `change` is computed from the latest stored version (read first, one
   * lookup), and the result is written as the next version only if no other writer wrote that version
   * meanwhile. Otherwise it throws CONFLICT (context: expectedVersion, actualVersion): read again and
   * retry. A change that leaves the hash as it is writes nothing.
   */
  async update(
    name: string,
    change: DefinitionChange | ((current: ModelDefinition) => DefinitionChange | Promise<DefinitionChange>),
    options: UpdateOptions = {},
  ): Promise<DefinedModel> {
    const startedAt = this.clock();
    const current = this.accept(this.definitions.decode(this.requireStored(name, await this.definitions.read(name))), startedAt, 'remote');
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

    const definition: ModelDefinition = { ...shape, version: base.version + 1, hash, updatedAt: new Date(), updatedBy: this.updatedBy, nextFieldId };
    const outcome = await this.commit(definition);
    if (!outcome.committed) {
      throw conflict(name, this.namespace, base.version, this.definitions.head(this.requireStored(name, outcome.current)).version);
    }
    return this.committed(definition, startedAt);
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
   * Writes the definition's version. When another writer got there first, `current` is the head it left;
   * a head holding this very version and hash is our own write whose reply was lost to a retry.
   */
  private async commit(definition: ModelDefinition): Promise<{ committed: true } | { committed: false; current: Entity | undefined }> {
    try {
      await this.definitions.insertVersion(definition);
      return { committed: true };
    } catch (error) {
      const code = grpcCode(error);
      if (code !== GrpcCode.ALREADY_EXISTS && code !== GrpcCode.ABORTED) throw error;
      const current = await this.definitions.read(definition.name);
      const head = current && this.definitions.head(current);
      return head?.version === definition.version && head.hash === definition.hash ? { committed: true } : { committed: false, current };
    }
  }

  private result(entry: CacheEntry): DefinedModel {
    return { model: entry.model, definition: entry.definition };
  }

  /** What this factory wrote, even when a get has meanwhile cached a newer version by another writer. */
  private committed(definition: ModelDefinition, startedAt: number): DefinedModel {
    const entry = this.accept(definition, startedAt, 'local');
    return { definition, model: entry.definition.hash === definition.hash ? entry.model : buildModel(definition, this.namespace) };
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
    const entity = this.requireStored(name, await this.definitions.read(name));
    const cached = this.cache.get(name);
    const head = this.definitions.head(entity);
    // The common case: nothing changed, so nothing is parsed or built.
    if (cached !== undefined && cached.definition.version === head.version && cached.definition.hash === head.hash) {
      cached.checkedAt = Math.max(cached.checkedAt, startedAt);
      return cached;
    }
    return this.accept(this.definitions.decode(entity), startedAt, 'remote');
  }

  /**
   * Takes a definition read or written at `startedAt` into the cache. Versions only move forward, so a
   * slow read that returns after a newer one changes nothing; the model is rebuilt only when the hash
   * changed, and only then is definitionChanged emitted.
   */
  private accept(definition: ModelDefinition, startedAt: number, origin: 'local' | 'remote'): CacheEntry {
    const cached = this.cache.get(definition.name);
    if (cached !== undefined && definition.version <= cached.definition.version) {
      if (definition.version === cached.definition.version) cached.checkedAt = Math.max(cached.checkedAt, startedAt);
      return cached;
    }
    if (cached !== undefined && cached.definition.hash === definition.hash) {
      cached.definition = definition;
      cached.checkedAt = Math.max(cached.checkedAt, startedAt);
      return cached;
    }
    const model = buildModel(definition, this.namespace);
    if (this.register) registerModel(model);
    const entry: CacheEntry = { definition, model, resolved: Promise.resolve(model), checkedAt: startedAt };
    this.cache.set(definition.name, entry);
    if (cached !== undefined || origin === 'local') {
      const previous = cached?.definition;
      this.emit('definitionChanged', { name: definition.name, previous, current: definition, diff: diffDefinitions(previous, definition), model, origin });
    }
    return entry;
  }

  private requireStored(name: string, entity: Entity | undefined): Entity {
    if (entity !== undefined) return entity;
    this.cache.delete(name);
    throw new DsMigrateError(
      'UNKNOWN_KIND',
      `No model definition named "${name}" is stored (kind ${DEFINITION_KIND}, namespace ${JSON.stringify(this.namespace)}); define it first with ModelFactory.define().`,
      { model: name, kind: DEFINITION_KIND, namespace: this.namespace },
    );
  }
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
