export {
  ModelFactory,
  DEFAULT_STALENESS_MS,
  type ModelFactoryOptions,
  type ModelFactoryEvents,
  type DefinitionChange,
  type DefinitionChangedEvent,
  type DefinedModel,
  type UpdateOptions,
  type DefinitionSummary,
  type SchemaMigrationView,
} from './factory';
export { normalizeDefinition, definitionHash, type DefinitionInput, type FieldInput, type FieldDefinition, type ItemDefinition, type ModelDefinition, type ModelShape } from './definition';
export { canonicalJson, sha256Hex, type JsonValue } from './hash';
export { diffDefinitions, type SchemaDiff, type FieldAttribute } from '../model';
export { DEFINITION_KIND } from './store';
export { buildModel } from './build-model';
export { planSchemaChange, deletionOrphan, describeStep, DEFAULT_RETENTION_MS, type SchemaPlan, type SchemaStep, type Orphan, type PlanInput } from './schema-plan';
export { builtinConverter, type BuiltinConverter, type ConverterFunction, type TypeRef } from './converters';
export { SCHEMA_MIGRATION_KIND, SCHEMA_STATE_KIND, type SchemaMigrationStatus, type StoredSchemaMigration } from './store';
export { schemaMigrationId, schemaMigrationResolver, type SchemaCloudTasks } from './schema-run';
export { type ApplyOptions } from './schema-migrations';
export { compareWithModels, runtimeModels, type DescribedModel, type ModelOrigin, type StoredVersusModels, type KindVersusModels, type StoredVersusModelsOptions } from './introspect';
