export {
  ModelFactory,
  DEFAULT_STALENESS_MS,
  type ModelFactoryOptions,
  type ModelFactoryEvents,
  type DefinitionChange,
  type DefinitionChangedEvent,
  type DefinedModel,
  type UpdateOptions,
} from './factory';
export {
  normalizeDefinition,
  definitionHash,
  type DefinitionInput,
  type FieldInput,
  type FieldDefinition,
  type ItemDefinition,
  type ModelDefinition,
  type ModelShape,
} from './definition';
export { canonicalJson, sha256Hex, type JsonValue } from './hash';
export { diffDefinitions, type SchemaDiff, type FieldAttribute } from './schema-diff';
export { DEFINITION_KIND } from './store';
export { buildModel } from './build-model';
