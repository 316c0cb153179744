import { Model, type FieldMap, type FieldSpec } from '../model';
import { toFieldValue, type FieldDefinition, type ModelShape } from './definition';

/** The model a definition describes: the same class defineModel makes, fields in definition order. */
export function buildModel(shape: ModelShape, namespace: string): Model {
  const fields: FieldMap = {};
  for (const field of shape.fields) fields[field.name] = fieldSpec(field);
  return new Model(shape.kind, fields, { namespace });
}

function fieldSpec(field: FieldDefinition): FieldSpec {
  const spec: FieldSpec = { type: field.type, nullable: field.nullable, indexed: field.indexed };
  if (field.items) spec.items = { type: field.items.type, nullable: field.items.nullable };
  if (field.default !== undefined) {
    const value = toFieldValue(field.type, field.items, field.default);
    // A Date is mutable and the model clones only arrays and objects: give each entity its own.
    spec.default = value instanceof Date ? () => new Date(value.getTime()) : value;
  }
  return spec;
}
