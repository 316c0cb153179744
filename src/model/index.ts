export { defineModel, Model, type FieldMap, type ValuesOf, type ModelInstance, type ModelOptions, type QueryOptions, type KeyOptions } from './define-model';
export {
  field,
  FIELD_TYPES,
  UNIQUE_TYPES,
  checkValue,
  validateFieldSpec,
  storedValue,
  fieldIndexed,
  renameOf,
  type FieldSpec,
  type FieldType,
  type FieldOptions,
  type FieldValueMap,
  type RenamedFrom,
} from './fields';
export { kindOf, type KindRef } from './kind-ref';
export { modelFor, hasModel, registerModel, registeredModels, uniqueFieldsOf } from './registry';
export { UNIQUE_MARKER_KIND, uniqueValueOf, markerKey, keepMarkers, type UniqueValue, type UniqueFields, type MarkerChange } from './unique';
export { validateIndexes, type CompositeIndex, type IndexDirection, type IndexEntry } from './composite-indexes';
export { indexYaml, sortIndexes } from './index-yaml';
export { loadModels } from './load-models';
export { canonicalJson, type JsonValue } from './canonical-json';
export { type ModelShape, type FieldDefinition, type ItemDefinition } from './schema-shape';
export { diffDefinitions, type SchemaDiff, type FieldAttribute } from './schema-diff';
export { builtinConverter, needsNoConversion, showType, type TypeRef, type BuiltinConverter } from './type-change';
export { schemaChange, type SchemaChange, type DataStep, type MarkerStep, type OldNameStep, type LeftBehind, type StoredType } from './schema-change';
export {
  stateOfModels,
  decodeModelState,
  definitionOf,
  shapeOf,
  sameState,
  COMPUTED_DEFAULT,
  type ModelState,
  type KindState,
  type StateIndex,
  type StateOptions,
  type AmbiguousChange,
} from './model-state';
