export { DsMigrateError, isDsMigrateError, type ErrorCode, type ErrorContext, type ExitCode } from './errors';
export { Datastore, Entity, Key, GeoPoint, Double, Transaction, type StoreOptions, type Value, type QuerySpec, type PropertyFilter } from './datastore';
export { fromOfficialKey, toOfficialKey, fromOfficialEntity, toOfficialEntity, type OfficialKey, type OfficialId, type OfficialClient, type OfficialSaveEntity } from './datastore';
export {
  defineModel,
  field,
  Model,
  modelFor,
  UNIQUE_MARKER_KIND,
  indexYaml,
  type FieldSpec,
  type FieldType,
  type ModelInstance,
  type ModelOptions,
  type ValuesOf,
  type KindRef,
  type RenamedFrom,
  type CompositeIndex,
  type IndexDirection,
  type IndexEntry,
} from './model';
export { defineMigration, type MigrationDefinition } from './migrations';
export { type MigrationGraph, type MigrationSource, type MigrateOptions, type MigrateSummary, type RunEvent } from './migrations';
export {
  loadGraph,
  migrate,
  plan,
  status,
  verify,
  type MigrationsContext,
  type MigrateContext,
  type PendingPlan,
  type PendingMigration,
  type MigrationsStatus,
  type MigrationStatus,
  type CurrentRun,
} from './api';
export type { VerifyReport, OperationVerdict, VerifyProblem } from './executors';
export { createWorker, type WorkerOptions } from './worker';
export { resolveWorkerSettings, resolveDispatchSettings, type CloudTasksConfig, type DispatchSettings } from './executors/cloud-tasks';
export {
  Operation,
  AddFieldData,
  RemoveFieldData,
  CopyFieldData,
  DeleteModelData,
  CopyModelData,
  CopyModelDataToNamespace,
  MapFunctionOnEntities,
  BuildUniqueMarkers,
  RunFunction,
  type FunctionContext,
  type StepFunction,
  type RunFunctionOptions,
  type MapFunction,
  type MapContext,
  type ScanOptions,
} from './operations';
export { LocalExecutor } from './executors';
export type { Executor, OperationProgress, OperationResult } from './migrations';
export { defineConfig, type DsMigrateConfig } from './cli/config';
export {
  ModelFactory,
  DEFAULT_STALENESS_MS,
  diffDefinitions,
  definitionHash,
  type ModelFactoryOptions,
  type SchemaCloudTasks,
  type DefinitionInput,
  type FieldInput,
  type FieldDefinition,
  type ModelDefinition,
  type DefinitionChange,
  type DefinitionChangedEvent,
  type SchemaDiff,
} from './dynamic';
