import { DsMigrateError } from '../../errors';
import type { Direction, LoadedMigration, MigrationResolver, MigrationStep } from '../../migrations';
import type { RunMigration } from './run-state';

export interface RunSteps {
  migration: LoadedMigration;
  /** In the run's order, as planned when the run started. */
  steps: MigrationStep[];
}

/**
 * A run's migration as this process resolves it (from its own files, or rebuilt from what is stored),
 * with the steps the run planned. A worker deployed with another version of a file than the one the
 * run was planned with, or a stored plan that no longer matches, refuses rather than run other code.
 */
export async function runSteps(resolve: MigrationResolver, planned: RunMigration, direction: Direction): Promise<RunSteps> {
  const migration = await resolve(planned.id);
  if (!migration) {
    throw new DsMigrateError('MIGRATION_LOAD', `Migration ${planned.id} is not among this process's migration files; deploy the worker with the same migrations as the run.`, {
      migration: planned.id,
    });
  }
  if (migration.checksum !== planned.checksum) {
    throw new DsMigrateError(
      'MIGRATION_LOAD',
      `${migration.file} differs from the version the run was planned with (checksum ${migration.checksum}, run has ${planned.checksum}); deploy the worker with the same migrations as the run.`,
      { migration: planned.id, file: migration.file },
    );
  }
  const operations = migration.definition.operations;
  const steps = planned.steps.map((index) => {
    const operation = operations[index];
    if (!operation) throw new DsMigrateError('MIGRATION_LOAD', `${migration.file} has no operation ${index}, which the run planned.`, { migration: planned.id, file: migration.file });
    return { index, operation: direction === 'forward' ? operation : operation.reverse() };
  });
  return { migration, steps };
}
