export { defineMigration, isDefinedMigration, type MigrationDefinition, type DefinedMigration } from './definition';
export { loadMigrationFiles, migrationId, checksumOf, type LoadedMigration, type MigrationSource } from './loader';
export { buildGraph, graphFor, planRun, resolveTarget, resolverOf, isApplied, type MigrationGraph, type MigrationResolver } from './graph';
export { Recorder, operationsDone, type MigrationRecord, type MigrationState, type OperationRecord, type JobCounts, type Direction } from './recorder';
export { Coverage } from './coverage';
export { Lease, processOwner, runOwner, type LeaseHolder } from './lease';
export { Lifecycle, type StepStart } from './lifecycle';
export {
  checkChecksums,
  checkHistory,
  historyProblems,
  inEffect,
  stepsFor,
  stepOf,
  describeStep,
  recoveryAdvice,
  type Failure,
  pendingPlan,
  type MigrationStep,
  type PlannedMigration,
  type Plan,
  type PlanOptions,
} from './planning';
export { type Executor, type OperationProgress, type OperationResult, type RunOperationRequest, type DryRunSample, operationOf } from './executor';
export { migrate, type MigrateOptions, type MigrateSummary, type RunnerContext } from './runner';
export { Run, breakLease, type Settlement, type RunEvent, type RunRequest, type ReadyStep, type OpenRunOptions, type OpenedRun } from './run';
export { loadRun, recentRuns, currentMigration, isCurrentStep, type RunState, type RunStatus, type RunDriver, type RunMigration, type RunWait } from './run-state';
export { closingReason, followRun, leaseProblem, stepCounts, type FollowOptions } from './follow';
export { squashMigrations, squashRange, foldOperations, type SquashedMigration, type SquashItem, type Dropped } from './squash';
export { migrationSource, writableProblem, type MigrationFile, type WrittenOperation, type JsonValue } from './writer';
export { detectChanges, type DetectedChanges } from './autodetector';
export { makeMigration, recordedState, type MakeMigrationOptions, type NewMigration } from './make-migrations';
export { emptyScopes, emptyScopeOf, emptyScopeMessage, refuseEmptyScopes, type EmptyScope } from './empty-scopes';

import { buildGraph, type MigrationGraph } from './graph';
import { loadMigrationFiles, type MigrationSource } from './loader';

/** Loads every app's files and orders them; all loader errors are MIGRATION_LOAD errors naming the file. */
export async function loadGraph(sources: readonly MigrationSource[]): Promise<MigrationGraph> {
  return buildGraph(await loadMigrationFiles(sources));
}
