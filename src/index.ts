export { DsMigrateError, isDsMigrateError, type ErrorCode, type ErrorContext, type ExitCode } from './errors';
export { Datastore, Entity, Key, GeoPoint, Double, Transaction, type StoreOptions, type Value, type QuerySpec, type PropertyFilter } from './datastore';
export { defineModel, field, Model, modelFor, type FieldSpec, type FieldType, type ModelInstance, type ValuesOf, type KindRef } from './model';
