import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { createJiti } from 'jiti';
import { DsMigrateError, errorMessage, quotedLoadError, sentence } from '../errors';
import { Model } from './define-model';
import { registeredModels } from './registry';

const MODULE_FILE = /\.(ts|js|mjs|cjs|mts|cts)$/;
const SKIPPED = /\.d\.ts$|\.test\.|\.spec\./;

/**
 * Imports the app's model modules (files, or every module directly in a directory) and returns every model
 * defined so far. As with migration files (src/migrations/loader.ts), jiti compiles TypeScript on the fly and
 * `datastore-migrate` resolves to this copy of the library, so the modules' defineModel calls land in this
 * process's registry.
 */
export function loadModels(paths: readonly string[]): Model[] {
  const jiti = createJiti(__filename, { alias: { 'datastore-migrate': path.resolve(__dirname, '..', 'index') }, interopDefault: true });
  for (const file of paths.flatMap(modulesAt)) {
    try {
      jiti(file);
    } catch (error) {
      if (error instanceof DsMigrateError) throw new DsMigrateError(error.code, `Models module ${file}: ${error.message}`, { ...error.context, file }, { cause: error });
      throw new DsMigrateError('BAD_INPUT', `Models module ${file} cannot be loaded: ${quotedLoadError(error)}`, { file }, { cause: error });
    }
  }
  return registeredModels().filter((m): m is Model => m instanceof Model);
}

function modulesAt(target: string): string[] {
  let isDirectory: boolean;
  try {
    isDirectory = statSync(target).isDirectory();
  } catch (error) {
    throw new DsMigrateError('BAD_INPUT', `Models module ${target} cannot be read: ${sentence(errorMessage(error))}`, { file: target });
  }
  if (!isDirectory) return [target];
  return readdirSync(target)
    .filter((name) => MODULE_FILE.test(name) && !SKIPPED.test(name))
    .sort()
    .map((name) => path.join(target, name));
}
