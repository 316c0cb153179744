import { DsMigrateError } from '../errors';
import { directedOperations, type LoadedMigration, type MigrationGraph } from '../migrations';
import type { Operation } from '../operations';
import type { RunMigration } from './run-state';

export interface MigrationStep {
  migration: LoadedMigration;
  /** In the run's direction: reversed, and in reverse order, when unapplying. */
  operations: Operation[];
}

/**
 * The migration's operations as this process loaded them from its own files. A worker deployed with
 * another version of a file than the one the run was planned with refuses, rather than run other code.
 */
export function stepFor(graph: MigrationGraph, planned: RunMigration, direction: 'forward' | 'reverse'): MigrationStep {
  const migration = graph.byId.get(planned.id);
  if (!migration) {
    throw new DsMigrateError('MIGRATION_LOAD', `Migration ${planned.id} is not among this process's migration files; deploy the worker with the same migrations as the run.`, { migration: planned.id });
  }
  if (migration.checksum !== planned.checksum) {
    throw new DsMigrateError(
      'MIGRATION_LOAD',
      `${migration.file} differs from the version the run was planned with (checksum ${migration.checksum}, run has ${planned.checksum}); deploy the worker with the same migrations as the run.`,
      { migration: planned.id, file: migration.file },
    );
  }
  return { migration, operations: directedOperations(migration, direction) };
}
