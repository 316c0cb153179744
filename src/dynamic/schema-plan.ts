import { DsMigrateError } from '../errors';
import { schemaChange, showType, type BuiltinConverter, type FieldDefinition, type ModelShape, type TypeRef } from '../model';
import { canonicalJson, sha256Hex, type JsonValue } from './hash';

/** How long orphaned data is kept before `cleanup` may remove it, unless told otherwise. */
export const DEFAULT_RETENTION_MS = 30 * 24 * 60 * 60 * 1000;

/**
 * Data no definition reads any more, kept rather than deleted: a property of a kind (a field removed,
 * or renamed away from) or a whole kind (renamed away from, or its definition deleted). `cleanup`
 * removes it once its retention has passed.
 */
export interface Orphan {
  /** `property:<kind>.<name>@v<version>` or `kind:<kind>@v<version>`: unique within a definition. */
  readonly id: string;
  readonly type: 'property' | 'kind';
  readonly kind: string;
  readonly property?: string;
  /** The stable id of the field whose data it was, so that giving the field back its name restores it. */
  readonly fieldId?: string;
  /** The definition version that orphaned it. */
  readonly version: number;
  /** ISO 8601: when it was orphaned; retention counts from here. */
  readonly since: string;
}

/**
 * One step of a schema plan, stored as JSON (what it does is rebuilt from it, so every process runs the
 * same operations). `safe` steps lose nothing and run without approval.
 */
export type SchemaStep =
  | { readonly type: 'CopyModelData'; readonly kind: string; readonly toKind: string; readonly safe: true }
  | { readonly type: 'AddFieldData'; readonly kind: string; readonly field: string; readonly fieldId: string; readonly safe: true }
  | { readonly type: 'CopyFieldData'; readonly kind: string; readonly from: string; readonly to: string; readonly fieldId: string; readonly safe: true }
  | {
      readonly type: 'ConvertField';
      readonly kind: string;
      readonly field: string;
      readonly fieldId: string;
      readonly from: TypeRef & { readonly indexed: boolean };
      readonly to: TypeRef & { readonly indexed: boolean };
      /** 'custom': a converter function given with `force: true`, which only its process holds. */
      readonly converter: BuiltinConverter | 'custom';
      readonly safe: boolean;
    }
  | { readonly type: 'Reindex'; readonly kind: string; readonly field: string; readonly fieldId: string; readonly indexed: boolean; readonly safe: true };

/** What one definition change does to the data: from version to version, in order. */
export interface SchemaPlan {
  readonly model: string;
  readonly fromVersion: number;
  readonly toVersion: number;
  readonly steps: readonly SchemaStep[];
  /** Data this change leaves behind for cleanup. */
  readonly orphans: readonly Orphan[];
  /** Ids of earlier orphans this change uses again (a field given back its old name): no longer orphaned. */
  readonly restored: readonly string[];
  /** Some step is lossy or forced: it runs only once approved. */
  readonly needsApproval: boolean;
  /** Of the steps: names the synthetic migration's contents, as a file's checksum does. */
  readonly checksum: string;
}

export interface PlanInput {
  /** The definition before; undefined when it is new (or defined again after a delete). */
  readonly before: ModelShape | undefined;
  readonly after: ModelShape;
  readonly fromVersion: number;
  readonly toVersion: number;
  /** The definition's orphans not yet cleaned up: a field may not pick up another field's leftover data. */
  readonly orphans: readonly Orphan[];
  readonly now: Date;
  /** Field names (in `after`) whose type change has a converter function given by the caller. */
  readonly converted?: readonly string[];
  /** Allow type changes no built-in converter covers, with the given converters; the plan then needs approval. */
  readonly force?: boolean;
}

/**
 * The plan for a definition change, fields matched by stable id. Pure: reads nothing, writes nothing.
 * The steps are those `schemaChange` (src/model/schema-change.ts) chooses for any change of shape; here
 * they are checked against the definition's orphans, what they leave behind is orphaned (never deleted),
 * and a type change no built-in converter covers is refused unless forced with the caller's converter.
 */
export function planSchemaChange(input: PlanInput): SchemaPlan {
  const { before, after, fromVersion, toVersion, now } = input;
  const change = schemaChange(before, after);
  const kind = after.kind;
  const since = now.toISOString();
  const orphans: Orphan[] = [];
  const restored = new Set<string>();
  const fail = (field: string, why: string): never => {
    throw new DsMigrateError('MODEL_DEFINITION', `Model definition "${after.name}" v${fromVersion}→v${toVersion}: field "${field}" ${why}.`, {
      model: after.name,
      field,
      fromVersion,
      toVersion,
    });
  };
  const property = (propertyKind: string, name: string, fieldId: string): Orphan => ({
    id: `property:${propertyKind}.${name}@v${toVersion}`,
    type: 'property',
    kind: propertyKind,
    property: name,
    fieldId,
    version: toVersion,
    since,
  });

  for (const left of change.leftBehind) {
    if (left.type !== 'kind') continue;
    const taken = input.orphans.find((o) => o.type === 'kind' && o.kind === kind);
    if (taken) restored.add(taken.id);
    orphans.push({ id: `kind:${left.kind}@v${toVersion}`, type: 'kind', kind: left.kind, version: toVersion, since });
    // The copy brings the old kind's leftover properties along: they stay orphaned in the new kind.
    for (const o of input.orphans) if (o.type === 'property' && o.kind === left.kind) orphans.push(property(kind, o.property!, o.fieldId!));
  }

  // A name a field starts using must not hold another field's leftover data, which it would read as its own.
  const claim = (field: FieldDefinition): void => {
    for (const o of [...input.orphans, ...orphans]) {
      if (o.type !== 'property' || o.kind !== kind || o.property !== field.name) continue;
      if (o.fieldId === field.id) {
        restored.add(o.id);
        continue;
      }
      fail(
        field.name,
        `would read the data field ${o.fieldId} left behind in version ${o.version} (orphaned ${o.since}): give the field its id "${o.fieldId}" to bring that data back, run \`dsmigrate schema cleanup\` once its retention has passed, or choose another name`,
      );
    }
  };
  for (const field of change.diff.added) claim(field);
  for (const rename of change.diff.renamed) {
    claim(after.fields.find((f) => f.id === rename.id)!);
    orphans.push(property(kind, rename.from, rename.id));
  }
  for (const field of change.diff.removed) orphans.push(property(kind, field.name, field.id));

  const steps = change.steps.map((step): SchemaStep => {
    if (step.type !== 'ConvertField') return { ...step, safe: true };
    if (step.converter) return { ...step, converter: step.converter, safe: true };
    if (input.force && input.converted?.includes(step.field)) return { ...step, converter: 'custom', safe: false };
    return fail(
      step.field,
      `changes type from ${showType(step.from)} to ${showType(step.to)}, which no built-in converter does without loss (built in: integer→double, T→array of T, string/number/boolean/entity/array/timestamp→json). ` +
        `Give a converter and force: update(name, change, {converters: {${JSON.stringify(step.field)}: (value) => ...}, force: true}); the plan then waits for approval`,
    );
  });

  const stepsJson = steps as unknown as JsonValue;
  return {
    model: after.name,
    fromVersion,
    toVersion,
    steps,
    orphans,
    restored: [...restored],
    needsApproval: steps.some((s) => !s.safe),
    checksum: sha256Hex(canonicalJson({ model: after.name, fromVersion, toVersion, steps: stepsJson })).slice(0, 16),
  };
}

/** Deleting a definition keeps its data: the whole kind becomes an orphan. */
export function deletionOrphan(definition: ModelShape, version: number, now: Date): Orphan {
  return { id: `kind:${definition.kind}@v${version}`, type: 'kind', kind: definition.kind, version, since: now.toISOString() };
}

/** One line per step, for `dsmigrate schema plan`. */
export function describeStep(step: SchemaStep): string {
  const approval = step.safe ? '' : ' [needs approval]';
  switch (step.type) {
    case 'CopyModelData':
      return `Copy every ${step.kind} entity into ${step.toKind} (the old kind is kept until cleanup)${approval}`;
    case 'AddFieldData':
      return `Write the default of ${step.kind}.${step.field} where missing (it is indexed: queries must find it)${approval}`;
    case 'CopyFieldData':
      return `Copy ${step.kind}.${step.from} into ${step.to} (the old property is kept until cleanup)${approval}`;
    case 'ConvertField':
      return `Convert ${step.kind}.${step.field} from ${showType(step.from)} to ${showType(step.to)} (${step.converter === 'custom' ? 'the given converter, forced' : step.converter})${approval}`;
    case 'Reindex':
      return `${step.indexed ? 'Index' : 'Unindex'} ${step.kind}.${step.field} on every entity${approval}`;
  }
}
