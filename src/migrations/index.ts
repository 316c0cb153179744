export { defineMigration, isDefinedMigration, type MigrationDefinition, type DefinedMigration } from './definition';
export { loadMigrationFiles, migrationId, checksumOf, type LoadedMigration, type MigrationSource } from './loader';
export { buildGraph, type MigrationGraph } from './graph';
export { Recorder, MIGRATION_KIND, type MigrationRecord, type MigrationState, type OperationRecord } from './recorder';
export { MigrationLock, LOCK_KIND, lockKey, type LockHolder, type LockOptions } from './lock';
export { migrate, planRun, directedOperations, checkChecksums, resolveTarget, isApplied, operationRunId, type MigrateOptions, type MigrateSummary, type RunEvent, type RunnerContext } from './runner';

import { buildGraph, type MigrationGraph } from './graph';
import { loadMigrationFiles, type MigrationSource } from './loader';

/** Loads every app's files and orders them; all loader errors are MIGRATION_LOAD errors naming the file. */
export async function loadGraph(sources: readonly MigrationSource[]): Promise<MigrationGraph> {
  return buildGraph(await loadMigrationFiles(sources));
}
export type { Executor, OperationProgress, OperationResult, RunOperationRequest, DryRunSample } from '../executors';
