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
