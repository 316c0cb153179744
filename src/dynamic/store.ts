import { Entity, Key, TRANSIENT_CODES, type Datastore } from '../datastore';
import { DsMigrateError, isDsMigrateError } from '../errors';
import { definitionHash, normalizeDefinition, type FieldInput, type ModelDefinition, type ModelShape } from './definition';
import { canonicalJson } from './hash';

/** The control kind holding one entity per definition, keyed by the definition's name: its current version. */
export const DEFINITION_KIND = '_dsmigrate_model';
/** Every version ever written, as children of the definition (id = version): the memory of compare-and-set. */
export const DEFINITION_VERSION_KIND = '_dsmigrate_model_version';

/** What a check needs from a stored definition: enough to tell whether a cached model is current. */
export interface DefinitionHead {
  version: number;
  hash: string;
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
  async insertVersion(definition: ModelDefinition): Promise<void> {
    const head = this.encode(definition, this.key(definition.name));
    await this.store.transaction(
      async (tx) => {
        tx.insert(this.encode(definition, this.versionKey(definition.name, definition.version)));
        if (definition.version === 1) tx.insert(head);
        else tx.upsert(head);
      },
      // ABORTED is contention on this very definition: the caller must read again, not repeat the write.
      { codes: TRANSIENT_CODES },
    );
  }

  head(entity: Entity): DefinitionHead {
    const version = entity.get('version');
    const hash = entity.get('hash');
    if ((typeof version !== 'number' && typeof version !== 'bigint') || typeof hash !== 'string') {
      throw this.corrupt(entity, 'has no integer version or no hash');
    }
    return { version: Number(version), hash };
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

  private encode(definition: ModelDefinition, key: Key): Entity {
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
      },
      { excludeFromIndexes: ['fields', 'nextFieldId'] },
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
