import type { JsonValue } from './canonical-json';
import type { FieldType } from './fields';

/**
 * A model's schema as plain data, the one form both kinds of model are compared in: a runtime definition
 * (src/dynamic/) is stored in it, and `dsmigrate makemigrations` records the defineModel models in it
 * (model-state.ts). Fields are matched across two shapes by their stable `id`, so a rename is told from a
 * removal and an addition.
 */
export interface ModelShape {
  readonly name: string;
  readonly kind: string;
  readonly fields: readonly FieldDefinition[];
}

/** The element of an array field. */
export interface ItemDefinition {
  readonly type: Exclude<FieldType, 'array'>;
  readonly nullable: boolean;
}

/** One field, with every attribute explicit. */
export interface FieldDefinition {
  /** Survives renames and is never reused within a definition, so a diff can tell a rename from a remove + add. */
  readonly id: string;
  readonly name: string;
  readonly type: FieldType;
  readonly items?: ItemDefinition;
  /** A JSON value; timestamps as ISO 8601 text. Absent when the field has no default. */
  readonly default?: JsonValue;
  readonly nullable: boolean;
  readonly indexed: boolean;
  /** At most one entity per value: the model keeps a marker per value (unique.ts). */
  readonly unique: boolean;
  /**
   * A defineModel field's rename under way (fields.ts): the old property is read until the data is copied,
   * and written until the rename is complete. Runtime definitions never have it: their renames are told by id.
   */
  readonly renamedFrom?: { readonly name: string; readonly complete: boolean };
}
