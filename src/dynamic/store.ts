import { DATA_SIDE_KINDS, decodeJson, decodeStored } from '../control';
import { Entity, Key, type Datastore, type Transaction } from '../datastore';
import { DsMigrateError, isDsMigrateError } from '../errors';
import { definitionHash, normalizeDefinition, type FieldInput, type ModelDefinition, type ModelShape } from './definition';
import { canonicalJson } from './hash';
import type { Orphan, SchemaPlan } from './schema-plan';

/** The control kind holding one entity per definition, keyed by the definition's name: its current version. */
export const DEFINITION_KIND = DATA_SIDE_KINDS.modelDefinition;
/** Every version ever written, as children of the definition (id = version): the memory of compare-and-set. */
export const DEFINITION_VERSION_KIND = DATA_SIDE_KINDS.modelVersion;

/**
 * A definition change's schema migration: its plan and whether it may run, one child of the definition
 * per version (id = the version it migrates to), inserted in the same transaction as that version, so a
 * version never exists without its plan. (A control kind: it belongs in src/control/keys.ts's CONTROL_KINDS.)
 */
export const SCHEMA_MIGRATION_KIND = DATA_SIDE_KINDS.schemaMigration;
/** The highest version whose plan (and every earlier one) has run: until then models read through fallbacks. */
export const SCHEMA_STATE_KIND = DATA_SIDE_KINDS.schemaState;

/** The orphans a cleanup removes, keyed by the cleanup's checksum (root entities in the factory's namespace). */
export const SCHEMA_CLEANUP_KIND = DATA_SIDE_KINDS.schemaCleanup;

/** What a check needs from a stored definition: enough to tell whether a cached model is current. */
export interface DefinitionHead {
  version: number;
  hash: string;
  /** A deleted definition's head stays, as a tombstone, so that its version numbers are never reused. */
  deleted: boolean;
  /** The latest version whose plan moves data models must read around (renames, conversions, kind copies); 0 if none. */
  fallbackVersion: number;
}

/** `pending` waits for approval (some step is lossy or forced); `approved` may run; `applied` has run. */
export type SchemaMigrationStatus = 'pending' | 'approved' | 'applied';

export interface StoredSchemaMigration {
  plan: SchemaPlan;
  status: SchemaMigrationStatus;
  createdAt: Date;
  approvedBy?: string;
}

/** What is written with a version, in the same transaction. */
export interface VersionExtras {
  /** Orphans not yet cleaned up, carried from version to version. */
  orphans: readonly Orphan[];
  deleted?: boolean;
  /** The plan from the previous version; absent for a first definition (or one defined again after a delete). */
  migration?: StoredSchemaMigration;
  /** Set for a first definition: nothing is pending from any earlier version. */
  appliedVersion?: number;
  /** See DefinitionHead.fallbackVersion; carried from version to version like the orphans. */
  fallbackVersion: number;
}

/**
 * Stored definitions in one namespace. Fields are kept as canonical JSON text (unindexed), so what is
 * read back is exactly what was hashed; version and hash are plain properties so a check reads them
 * without parsing the fields. A version entity holds the same properties as the head did at that version.
 */
export class DefinitionStore {
  constructor(
    private readonly store: Datastore,
    readonly namespace: string,
  ) {}

  key(name: string): Key {
    return Key.of(DEFINITION_KIND, name, { namespace: this.namespace });
  }

  versionKey(name: string, version: number): Key {
    return this.key(name).child(DEFINITION_VERSION_KIND, version);
  }

  /** The current version: one key lookup. */
  read(name: string): Promise<Entity | undefined> {
    return this.store.get(this.key(name));
  }

  readVersion(name: string, version: number): Promise<Entity | undefined> {
    return this.store.get(this.versionKey(name, version));
  }

  /**
   * Writes `definition` as a new version and moves the head to it, in one transaction without reads:
   * the insert of the version entity fails if that version exists, so of two writers who started from
   * the same version exactly one commits, and one who started from an older version never does.
   * (A read in the transaction would serve too, but the Firestore emulator resolves two such readers
   * that both write only by a two-second lock timeout.) Version 1 also inserts the head.
   */
  async insertVersion(definition: ModelDefinition, extras: VersionExtras): Promise<void> {
    const head = this.encode(definition, this.key(definition.name), extras);
    // Retried as any transaction (ABORTED and unknown outcomes included): the version's insert makes a repeat
    // safe. It commits only if nobody wrote that version; after our own commit that landed but answered an
    // error, it fails with ALREADY_EXISTS, which isOwnVersion then recognises.
    await this.store.transaction(async (tx) => {
      tx.insert(this.encode(definition, this.versionKey(definition.name, definition.version), extras));
      if (definition.version === 1) tx.insert(head);
      else tx.upsert(head);
      // The plan commits with its version or not at all: no crash can leave a change without its migration.
      if (extras.migration) tx.insert(this.encodeMigration(definition.name, extras.migration));
      if (extras.appliedVersion !== undefined) tx.upsert(this.encodeState(definition.name, extras.appliedVersion));
    });
  }

  /**
   * Whether the stored entity of `definition`'s version is this very write (its hash, writer and time): what
   * an insertVersion answered ALREADY_EXISTS checks, since the insert is retried after a commit whose outcome
   * was unknown and then meets its own landed write.
   */
  async isOwnVersion(definition: ModelDefinition): Promise<boolean> {
    const stored = await this.readVersion(definition.name, definition.version);
    const at = stored?.get('updatedAt');
    return stored?.get('hash') === definition.hash && stored.get('updatedBy') === definition.updatedBy && at instanceof Date && at.getTime() === definition.updatedAt.getTime();
  }

  head(entity: Entity): DefinitionHead {
    const version = entity.get('version');
    const hash = entity.get('hash');
    if ((typeof version !== 'number' && typeof version !== 'bigint') || typeof hash !== 'string') {
      throw this.corrupt(entity, 'has no integer version or no hash');
    }
    const fallback = entity.get('fallbackVersion');
    return { version: Number(version), hash, deleted: entity.get('deleted') === true, fallbackVersion: typeof fallback === 'number' ? fallback : 0 };
  }

  /**
   * The version the data can be read as: the definition's own once every plan that moves data has run,
   * else the last version whose plans all ran (models then read through fallbacks from it). Plans that
   * only add defaults need no fallbacks, so they cost reads nothing.
   */
  readableVersion(head: Entity, appliedVersion: number): number {
    const { version, fallbackVersion } = this.head(head);
    return fallbackVersion > appliedVersion ? appliedVersion : version;
  }

  orphans(entity: Entity): Orphan[] {
    const text = entity.get('orphans');
    if (text === undefined) return [];
    if (typeof text !== 'string') throw this.corrupt(entity, 'has orphans that are not text');
    return decodeJson<{ orphans: Orphan[] }>(entity, 'orphans', `{"orphans":${text}}`, (v) => Array.isArray(v.orphans)).orphans;
  }

  stateKey(name: string): Key {
    return this.key(name).child(SCHEMA_STATE_KIND, 'state');
  }

  migrationKey(name: string, toVersion: number): Key {
    return this.key(name).child(SCHEMA_MIGRATION_KIND, toVersion);
  }

  /** The head and the schema state in one lookup, for a check. */
  async readWithState(name: string): Promise<{ head: Entity | undefined; appliedVersion: number }> {
    const [head, state] = await this.store.lookup([this.key(name), this.stateKey(name)]);
    return { head, appliedVersion: this.appliedVersion(state) };
  }

  /** Absent state: a definition made before schema migrations existed, or at version 1, where nothing is pending. */
  appliedVersion(state: Entity | undefined): number {
    return state === undefined ? 1 : decodeStored(state, { appliedVersion: 'number' }).appliedVersion;
  }

  /** Every definition in the namespace, tombstones included (kind queries work on every backend). */
  async listHeads(): Promise<Entity[]> {
    const out: Entity[] = [];
    for await (const entity of this.store.query({ kind: DEFINITION_KIND, namespace: this.namespace })) out.push(entity);
    return out;
  }

  async readMigration(name: string, toVersion: number, tx?: Transaction): Promise<StoredSchemaMigration | undefined> {
    const entity = await (tx ?? this.store).get(this.migrationKey(name, toVersion));
    return entity && this.decodeMigration(entity);
  }

  /** Marks a plan approved or applied, and moves the state past it when it has run; one transaction. */
  async setStatus(name: string, toVersion: number, status: SchemaMigrationStatus, approvedBy?: string): Promise<StoredSchemaMigration> {
    return this.store.transaction(async (tx) => {
      const current = await this.readMigration(name, toVersion, tx);
      if (!current) throw new DsMigrateError('UNKNOWN_KIND', `Model definition "${name}" has no schema migration to version ${toVersion}.`, { model: name, version: toVersion });
      const next: StoredSchemaMigration = { ...current, status, ...(approvedBy !== undefined && { approvedBy }) };
      tx.upsert(this.encodeMigration(name, next));
      if (status === 'applied') {
        const applied = this.appliedVersion(await tx.get(this.stateKey(name)));
        if (toVersion > applied) tx.upsert(this.encodeState(name, toVersion));
      }
      return next;
    });
  }

  /** Keeps what a cleanup removes before it runs; the same checksum always names the same orphans. */
  async saveCleanup(checksum: string, orphans: readonly Orphan[]): Promise<void> {
    await this.store.save([
      Entity.from(Key.of(SCHEMA_CLEANUP_KIND, checksum, { namespace: this.namespace }), { orphans: canonicalJson(orphans), createdAt: new Date() }, { excludeFromIndexes: ['orphans'] }),
    ]);
  }

  async readCleanup(checksum: string): Promise<Orphan[] | undefined> {
    const entity = await this.store.get(Key.of(SCHEMA_CLEANUP_KIND, checksum, { namespace: this.namespace }));
    if (entity === undefined) return undefined;
    const { orphans } = decodeStored(entity, { orphans: 'string' });
    return decodeJson<{ orphans: Orphan[] }>(entity, 'orphans', `{"orphans":${orphans}}`, (v) => Array.isArray(v.orphans)).orphans;
  }

  private encodeMigration(name: string, migration: StoredSchemaMigration): Entity {
    const { plan } = migration;
    return Entity.from(
      this.migrationKey(name, plan.toVersion),
      {
        model: name,
        fromVersion: plan.fromVersion,
        toVersion: plan.toVersion,
        plan: canonicalJson(plan),
        status: migration.status,
        needsApproval: plan.needsApproval,
        createdAt: migration.createdAt,
        ...(migration.approvedBy !== undefined && { approvedBy: migration.approvedBy }),
      },
      { excludeFromIndexes: ['plan'] },
    );
  }

  private decodeMigration(entity: Entity): StoredSchemaMigration {
    const stored = decodeStored(entity, { plan: 'string', status: 'string', createdAt: 'date', approvedBy: 'string?' });
    if (!['pending', 'approved', 'applied'].includes(stored.status)) throw this.corrupt(entity, `has status "${stored.status}"`);
    const plan = decodeJson<SchemaPlan>(entity, 'plan', stored.plan, (v) => Array.isArray(v.steps) && typeof v.toVersion === 'number' && typeof v.checksum === 'string');
    return { plan, status: stored.status as SchemaMigrationStatus, createdAt: stored.createdAt, ...(stored.approvedBy !== undefined && { approvedBy: stored.approvedBy }) };
  }

  private encodeState(name: string, appliedVersion: number): Entity {
    return Entity.from(this.stateKey(name), { appliedVersion });
  }

  /** The full definition, checked: its fields must validate and hash to the stored hash. */
  decode(entity: Entity): ModelDefinition {
    const { version, hash } = this.head(entity);
    const name = entity.key.path[0].name ?? '';
    const kind = entity.get('kind');
    const fieldsText = entity.get('fields');
    const updatedAt = entity.get('updatedAt');
    const updatedBy = entity.get('updatedBy');
    const nextFieldId = entity.get('nextFieldId');
    if (typeof kind !== 'string' || typeof fieldsText !== 'string' || !(updatedAt instanceof Date) || typeof updatedBy !== 'string' || typeof nextFieldId !== 'number') {
      throw this.corrupt(entity, 'is missing kind, fields, updatedAt, updatedBy or nextFieldId');
    }
    let shape: ModelShape;
    try {
      shape = normalizeDefinition({ name, kind, fields: JSON.parse(fieldsText) as FieldInput[] }).shape;
    } catch (error) {
      if (error instanceof SyntaxError || isDsMigrateError(error)) throw this.corrupt(entity, `does not validate: ${error.message}`);
      throw error;
    }
    if (definitionHash(shape) !== hash) throw this.corrupt(entity, 'has fields that do not match its hash (edited by hand?)');
    return { ...shape, version, hash, updatedAt, updatedBy, nextFieldId };
  }

  private encode(definition: ModelDefinition, key: Key, extras: VersionExtras): Entity {
    return Entity.from(
      key,
      {
        kind: definition.kind,
        fields: canonicalJson(definition.fields),
        nextFieldId: definition.nextFieldId,
        version: definition.version,
        hash: definition.hash,
        updatedAt: definition.updatedAt,
        updatedBy: definition.updatedBy,
        // Not hashed: bookkeeping of the data, not the shape of the model.
        orphans: canonicalJson(extras.orphans),
        fallbackVersion: extras.fallbackVersion,
        ...(extras.deleted && { deleted: true }),
      },
      { excludeFromIndexes: ['fields', 'nextFieldId', 'orphans', 'fallbackVersion'] },
    );
  }

  private corrupt(entity: Entity, why: string): DsMigrateError {
    return new DsMigrateError('MODEL_DEFINITION', `The stored model definition ${entity.key} ${why}.`, {
      model: entity.key.path[0].name,
      kind: DEFINITION_KIND,
      namespace: this.namespace,
      key: entity.key.toString(),
    });
  }
}
