export { defineModel, Model, type FieldMap, type ValuesOf, type ModelInstance, type ModelOptions, type QueryOptions, type KeyOptions } from './define-model';
export { field, FIELD_TYPES, checkValue, validateFieldSpec, storedValue, fieldIndexed, type FieldSpec, type FieldType, type FieldOptions, type FieldValueMap } from './fields';
export { kindOf, type KindRef } from './kind-ref';
export { modelFor, hasModel, registerModel } from './registry';
