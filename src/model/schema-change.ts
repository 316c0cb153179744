import { diffDefinitions, type SchemaDiff } from './schema-diff';
import type { FieldDefinition, ModelShape } from './schema-shape';
import { builtinConverter, needsNoConversion, type BuiltinConverter, type TypeRef } from './type-change';

/** A field's type and index setting, as a conversion reads and writes it. */
export type StoredType = TypeRef & { readonly indexed: boolean };

/** A step that moves stored data to the new shape; both the runtime factory and makemigrations run these. */
export type DataStep =
  | { readonly type: 'CopyModelData'; readonly kind: string; readonly toKind: string }
  | { readonly type: 'AddFieldData'; readonly kind: string; readonly field: string; readonly fieldId: string }
  | { readonly type: 'CopyFieldData'; readonly kind: string; readonly from: string; readonly to: string; readonly fieldId: string }
  /** `converter` undefined: no built-in conversion loses nothing, so the caller must supply one. */
  | {
      readonly type: 'ConvertField';
      readonly kind: string;
      readonly field: string;
      readonly fieldId: string;
      readonly from: StoredType;
      readonly to: StoredType;
      readonly converter?: BuiltinConverter;
    }
  | { readonly type: 'Reindex'; readonly kind: string; readonly field: string; readonly fieldId: string; readonly indexed: boolean };

/** A field that became unique: entities stored before hold values with no marker yet. */
export interface MarkerStep {
  readonly type: 'BuildUniqueMarkers';
  readonly kind: string;
  readonly field: string;
  readonly fieldId: string;
}

/** A rename marked complete: nothing reads or writes the old property any more, so it may go. */
export interface OldNameStep {
  readonly type: 'RemoveFieldData';
  readonly kind: string;
  readonly field: string;
  readonly fieldId: string;
}

/** Data the new shape no longer reads: a removed field's or renamed-away property, or a renamed-away kind. */
export type LeftBehind =
  { readonly type: 'property'; readonly kind: string; readonly property: string; readonly fieldId: string; readonly cause: 'removed' | 'renamed' } | { readonly type: 'kind'; readonly kind: string };

export interface SchemaChange {
  readonly diff: SchemaDiff;
  /** In the order to run them: the kind's copy first, so that the field steps find the data in the new kind. */
  readonly steps: readonly DataStep[];
  readonly markers: readonly MarkerStep[];
  readonly completedRenames: readonly OldNameStep[];
  readonly leftBehind: readonly LeftBehind[];
}

/**
 * What a change of shape does to the stored data, fields matched by stable id. Pure, and the one place
 * that decides it, for runtime definitions (src/dynamic/schema-plan.ts) and for `dsmigrate makemigrations`
 * (src/migrations/autodetector.ts) alike:
 * - a renamed kind is copied, and the old kind left behind;
 * - an added field needs nothing, as its default applies on load, unless it is indexed with a default (or
 *   nullable): then the default is written so that queries find it;
 * - a renamed field is copied, and its old property left behind;
 * - a type change converts, with a built-in lossless converter where one exists;
 * - an index setting changed on its own re-indexes every entity;
 * - a removed field's property is left behind, never deleted here;
 * - a field that became unique needs markers for the entities stored before (`markers`), and a rename
 *   marked complete frees its old property (`completedRenames`): the runtime factory does neither (its
 *   fields have no renamedFrom, and it leaves markers to a migration of the application's).
 */
export function schemaChange(before: ModelShape | undefined, after: ModelShape): SchemaChange {
  const diff = diffDefinitions(before, after);
  const kind = after.kind;
  const steps: DataStep[] = [];
  const markers: MarkerStep[] = [];
  const completedRenames: OldNameStep[] = [];
  const leftBehind: LeftBehind[] = [];
  const marker = (field: FieldDefinition): MarkerStep => ({ type: 'BuildUniqueMarkers', kind, field: field.name, fieldId: field.id });
  const byId = (id: string): FieldDefinition => after.fields.find((f) => f.id === id)!;

  if (diff.kind) {
    steps.push({ type: 'CopyModelData', kind: diff.kind.from, toKind: kind });
    leftBehind.push({ type: 'kind', kind: diff.kind.from });
  }
  for (const field of diff.added) {
    if (field.indexed && (field.default !== undefined || field.nullable)) steps.push({ type: 'AddFieldData', kind, field: field.name, fieldId: field.id });
    if (field.unique) markers.push(marker(field));
  }
  for (const rename of diff.renamed) {
    steps.push({ type: 'CopyFieldData', kind, from: rename.from, to: rename.to, fieldId: rename.id });
    leftBehind.push({ type: 'property', kind, property: rename.from, fieldId: rename.id, cause: 'renamed' });
  }
  for (const { name, from, to } of diff.retyped) {
    const source: StoredType = { type: from.type, ...(from.items && { items: from.items }), indexed: from.indexed };
    const target: StoredType = { type: to.type, ...(to.items && { items: to.items }), indexed: to.indexed };
    if (needsNoConversion(source, target)) continue;
    const converter = builtinConverter(source, target);
    steps.push({ type: 'ConvertField', kind, field: name, fieldId: to.id, from: source, to: target, ...(converter && { converter }) });
  }
  for (const changed of diff.changed) {
    const field = byId(changed.id);
    const previous = before!.fields.find((f) => f.id === changed.id)!;
    const retyped = diff.retyped.some((r) => r.id === changed.id);
    if (changed.attributes.includes('indexed') && !retyped) steps.push({ type: 'Reindex', kind, field: field.name, fieldId: field.id, indexed: field.indexed });
    if (field.unique && !previous.unique) markers.push(marker(field));
    if (field.renamedFrom?.complete && !previous.renamedFrom?.complete) completedRenames.push({ type: 'RemoveFieldData', kind, field: field.renamedFrom.name, fieldId: field.id });
  }
  for (const field of diff.removed) leftBehind.push({ type: 'property', kind, property: field.name, fieldId: field.id, cause: 'removed' });
  return { diff, steps, markers, completedRenames, leftBehind };
}
