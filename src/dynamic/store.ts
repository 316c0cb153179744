import { Entity, Key, type Datastore, type Transaction } from '../datastore';
import { DsMigrateError, isDsMigrateError } from '../errors';
import { definitionHash, normalizeDefinition, type FieldInput, type ModelDefinition } from './definition';
import { canonicalJson } from './hash';

/** The control kind holding one entity per definition, keyed by the definition's name. */
export const DEFINITION_KIND = '_dsmigrate_model';

/** What a check needs from a stored definition: enough to tell whether a cached model is current. */
export interface DefinitionHead {
  version: number;
  hash: string;
}

/**
 * Stored definitions in one namespace. Fields are kept as canonical JSON text (unindexed), so what is
 * read back is exactly what was hashed; version and hash are plain properties so a check reads them
 * without parsing the fields.
 */
export class DefinitionStore {
  constructor(
    private readonly store: Datastore,
    readonly namespace: string,
  ) {}

  key(name: string): Key {
    return Key.of(DEFINITION_KIND, name, { namespace: this.namespace });
  }

  /** One key lookup, inside the transaction when one is given. */
  read(name: string, tx?: Transaction): Promise<Entity | undefined> {
    return tx ? tx.get(this.key(name)) : this.store.get(this.key(name));
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
    const name = entity.key.name ?? '';
    const kind = entity.get('kind');
    const fieldsText = entity.get('fields');
    const updatedAt = entity.get('updatedAt');
    const updatedBy = entity.get('updatedBy');
    const nextFieldId = entity.get('nextFieldId');
    if (typeof kind !== 'string' || typeof fieldsText !== 'string' || !(updatedAt instanceof Date) || typeof updatedBy !== 'string' || typeof nextFieldId !== 'number') {
      throw this.corrupt(entity, 'is missing kind, fields, updatedAt, updatedBy or nextFieldId');
    }
    let shape;
    try {
      shape = normalizeDefinition({ name, kind, fields: JSON.parse(fieldsText) as FieldInput[] }).shape;
    } catch (error) {
      if (error instanceof SyntaxError || isDsMigrateError(error)) throw this.corrupt(entity, `does not validate: ${error.message}`);
      throw error;
    }
    if (definitionHash(shape) !== hash) throw this.corrupt(entity, 'has fields that do not match its hash (edited by hand?)');
    return { ...shape, version, hash, updatedAt, updatedBy, nextFieldId };
  }

  encode(definition: ModelDefinition): Entity {
    return Entity.from(
      this.key(definition.name),
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
      model: entity.key.name,
      kind: DEFINITION_KIND,
      namespace: this.namespace,
      key: entity.key.toString(),
    });
  }
}
