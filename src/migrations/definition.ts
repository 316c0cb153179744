import { DsMigrateError } from '../errors';
import { decodeModelState, type ModelState } from '../model';
import { Operation } from '../operations';

export interface MigrationDefinition {
  /** Names of migrations this one needs: '0001_initial' in the same app, 'app:0003_x' in another. Defaults to the previous file. */
  dependencies?: string[];
  operations: Operation[];
  description?: string;
  /**
   * The migrations this one stands in for (written by `dsmigrate squash`; docs/squashing.md): names as in
   * `dependencies`. A store that applied all of them treats this one as applied, one that applied none
   * runs this one instead, and one that applied some runs the rest of them.
   */
  replaces?: string[];
  /** The models' state this migration leads to, written by `dsmigrate makemigrations` (docs/makemigrations.md); hand-written migrations have none. */
  state?: ModelState;
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
  if (definition.replaces !== undefined) {
    const { replaces } = definition;
    if (!Array.isArray(replaces) || replaces.length === 0 || replaces.some((r) => typeof r !== 'string' || !r)) {
      throw new DsMigrateError('BAD_INPUT', "defineMigration: `replaces` must be a non-empty list of migration names (e.g. ['0002_add_colour', '0003_backfill']), as `dsmigrate squash` writes it.");
    }
    const twice = replaces.find((r, i) => replaces.indexOf(r) !== i);
    if (twice) throw new DsMigrateError('BAD_INPUT', `defineMigration: \`replaces\` lists ${twice} twice; list each replaced migration once.`, { migration: twice });
  }
  if (definition.state !== undefined) decodeModelState(definition.state, 'defineMigration');
  return Object.freeze({ ...definition, [BRAND]: true as const });
}

export function isDefinedMigration(value: unknown): value is DefinedMigration {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
}

function isOperation(value: unknown): value is Operation {
  return value instanceof Operation;
}
