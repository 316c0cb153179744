import { DsMigrateError } from '../errors';
import { Operation } from '../operations';

export interface MigrationDefinition {
  /** Names of migrations this one needs: '0001_initial' in the same app, 'app:0003_x' in another. Defaults to the previous file. */
  dependencies?: string[];
  operations: Operation[];
  description?: string;
}

const BRAND = Symbol.for('datastore-migrate.migration');

export type DefinedMigration = MigrationDefinition & { readonly [BRAND]: true };

/**
 * Declares a migration: `export default defineMigration({operations: [...]})`.
 * The brand lets the loader tell a migration from any other default export, even when the file's
 * copy of this package is not the CLI's own.
 */
export function defineMigration(definition: MigrationDefinition): DefinedMigration {
  if (typeof definition !== 'object' || definition === null) {
    throw new DsMigrateError('BAD_INPUT', 'defineMigration needs an object: defineMigration({ operations: [...] }).');
  }
  if (!Array.isArray(definition.operations)) {
    throw new DsMigrateError('BAD_INPUT', 'defineMigration: `operations` must be an array of operations.');
  }
  definition.operations.forEach((op, i) => {
    if (!isOperation(op)) {
      throw new DsMigrateError('BAD_INPUT', `defineMigration: operations[${i}] is not an operation (such as new AddFieldData(...)).`);
    }
  });
  if (definition.dependencies !== undefined && (!Array.isArray(definition.dependencies) || definition.dependencies.some((d) => typeof d !== 'string' || !d))) {
    throw new DsMigrateError('BAD_INPUT', 'defineMigration: `dependencies` must be a list of migration names.');
  }
  return Object.freeze({ ...definition, [BRAND]: true as const });
}

export function isDefinedMigration(value: unknown): value is DefinedMigration {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
}

function isOperation(value: unknown): value is Operation {
  return value instanceof Operation;
}
