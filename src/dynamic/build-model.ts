import type { Datastore, Entity, IdOrName, Key } from '../datastore';
import { diffDefinitions, Model, type FieldMap, type FieldSpec, type ModelInstance, type ValuesOf } from '../model';
import { builtinConverter, convertProperty, needsNoConversion, type Conversion, type ConverterFunction } from './converters';
import { toFieldValue, type FieldDefinition, type ModelShape } from './definition';

/** The model a definition describes: the same class defineModel makes, fields in definition order. */
export function buildModel(shape: ModelShape, namespace: string): Model {
  const fields: FieldMap = {};
  for (const field of shape.fields) fields[field.name] = fieldSpec(field);
  return new Model(shape.kind, fields, { namespace });
}

/** Where the data stands while schema plans run: the last definition whose plans all ran, and the converters this process holds. */
export interface PendingSchema {
  /** The definition at the applied version: what unmigrated entities look like. */
  readonly applied: ModelShape;
  readonly appliedVersion: number;
  readonly currentVersion: number;
  /** Forced conversions' functions by field name, when this process was given them. */
  readonly converters: Readonly<Record<string, ConverterFunction>>;
}

/**
 * The model of `shape` when plans from `pending.applied` to it have not all run: it reads entities the
 * plans have not reached yet as the plans will leave them. A renamed field falls back to its old
 * property (the model layer's renamedFrom, which also writes both names, so a copy running meanwhile
 * never overwrites a newer value with an older one); a converted field is converted on load with the
 * plan's own converter; a renamed kind is looked up in the old kind when the new one lacks the key. Saves
 * write the new shape. Once the plans have run the factory builds the plain model again.
 */
export function buildTransitionalModel(shape: ModelShape, namespace: string, pending: PendingSchema): Model {
  const diff = diffDefinitions(pending.applied, shape);
  if (!diff.kind && diff.renamed.length === 0 && diff.retyped.length === 0) return buildModel(shape, namespace);
  const fields: FieldMap = {};
  for (const field of shape.fields) {
    const rename = diff.renamed.find((r) => r.id === field.id);
    fields[field.name] = { ...fieldSpec(field), ...(rename && { renamedFrom: { name: rename.from, complete: false } }) };
  }
  const conversions: { property: string; fallback?: string; conversion: Conversion }[] = [];
  for (const { id, name, from, to } of diff.retyped) {
    const source = { type: from.type, ...(from.items && { items: from.items }), indexed: from.indexed };
    const target = { type: to.type, ...(to.items && { items: to.items }), indexed: to.indexed };
    if (needsNoConversion(source, target)) continue;
    const converter = builtinConverter(source, target) ?? pending.converters[name];
    // Without the forced converter this process cannot convert: the model's type check names the entity.
    if (converter === undefined) continue;
    const rename = diff.renamed.find((r) => r.id === id);
    conversions.push({
      property: name,
      fallback: rename?.from,
      conversion: { model: shape.name, field: name, fromVersion: pending.appliedVersion, toVersion: pending.currentVersion, from: source, to: target, converter },
    });
  }
  return new TransitionalModel(shape.kind, fields, namespace, diff.kind?.from, conversions);
}

class TransitionalModel extends Model {
  constructor(
    kind: string,
    fields: FieldMap,
    namespace: string,
    /** The kind the data is being copied from, while the copy runs. */
    private readonly oldKind: string | undefined,
    private readonly conversions: readonly { property: string; fallback?: string; conversion: Conversion }[],
  ) {
    super(kind, fields, { namespace });
  }

  override fromEntity(entity: Entity): ModelInstance<ValuesOf<FieldMap>> {
    // A copy, so that the caller's entity is left as it was read; saving the instance writes the new shape.
    const copy = entity.copy(this.oldKind !== undefined && entity.key.kind === this.oldKind ? entity.key.withKind(this.kind) : entity.key);
    for (const { property, fallback, conversion } of this.conversions) {
      const stored = copy.has(property) ? property : fallback !== undefined && copy.has(fallback) ? fallback : undefined;
      if (stored !== undefined) convertProperty(copy, stored, conversion);
    }
    return super.fromEntity(copy);
  }

  override async getMany(store: Datastore, refs: readonly (Key | IdOrName)[], options: { namespace?: string } = {}): Promise<(ModelInstance<ValuesOf<FieldMap>> | undefined)[]> {
    const found = await super.getMany(store, refs, options);
    const oldKind = this.oldKind;
    if (oldKind === undefined) return found;
    const missing = found.flatMap((instance, i) => (instance === undefined ? [i] : []));
    if (missing.length === 0) return found;
    const keys = missing.map((i) => {
      const ref = refs[i];
      return (typeof ref === 'object' ? ref : this.key(ref, options)).withKind(oldKind);
    });
    const old = await store.lookup(keys);
    missing.forEach((index, j) => {
      const entity = old[j];
      if (entity) found[index] = this.fromEntity(entity);
    });
    return found;
  }
}

function fieldSpec(field: FieldDefinition): FieldSpec {
  const spec: FieldSpec = { type: field.type, nullable: field.nullable, indexed: field.indexed };
  if (field.items) spec.items = { type: field.items.type, nullable: field.items.nullable };
  // Enforced by the model like a defineModel field: markers on save (src/model/unique.ts), kept by the operations.
  if (field.unique) spec.unique = true;
  if (field.default !== undefined) {
    const value = toFieldValue(field.type, field.items, field.default);
    // A Date is mutable and the model clones only arrays and objects: give each entity its own.
    spec.default = value instanceof Date ? () => new Date(value.getTime()) : value;
  }
  return spec;
}
