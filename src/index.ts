export { DsMigrateError, isDsMigrateError, type ErrorCode, type ErrorContext, type ExitCode } from './errors';
export { Datastore, Entity, Key, GeoPoint, Double, Transaction, type StoreOptions, type Value, type QuerySpec, type PropertyFilter } from './datastore';
export { defineModel, field, Model, modelFor, type FieldSpec, type FieldType, type ModelInstance, type ValuesOf, type KindRef } from './model';
export { defineMigration, type MigrationDefinition, type MigrationOperation } from './migrations/definition';
export { defineConfig, type DsMigrateConfig } from './cli/config';
