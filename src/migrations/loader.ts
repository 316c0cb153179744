import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { createJiti } from 'jiti';
import { DsMigrateError, errorMessage } from '../errors';
import { isDefinedMigration, type DefinedMigration } from './definition';

/** A migrations directory and its app label. */
export interface MigrationSource {
  app: string;
  dir: string;
}

export interface LoadedMigration {
  /** `app:name`, unique across apps. */
  id: string;
  app: string;
  /** The file name without extension, e.g. `0002_add_colour`. */
  name: string;
  file: string;
  checksum: string;
  /** Resolved to ids. */
  dependencies: string[];
  definition: DefinedMigration;
}

const MIGRATION_FILE = /^(\d{4}_[A-Za-z0-9_-]+)\.(ts|js|mjs|cjs|mts|cts)$/;
const LOOKS_NUMBERED = /^\d/;
const SKIPPED = /\.d\.ts$|\.map$|\.test\./;

export function migrationId(app: string, name: string): string {
  return `${app}:${name}`;
}

/**
 * Loads every migration file of every app, with no build step (jiti compiles TypeScript on the fly).
 * `datastore-migrate` imported by a migration resolves to this very copy of the library, so its
 * operations are the classes the runner knows, even in a repo that has not built the package.
 */
export async function loadMigrationFiles(sources: readonly MigrationSource[]): Promise<LoadedMigration[]> {
  const libraryEntry = path.resolve(__dirname, '..', 'index');
  const jiti = createJiti(__filename, { alias: { 'datastore-migrate': libraryEntry }, interopDefault: true });
  const loaded: LoadedMigration[] = [];
  for (const source of sources) {
    const files = listMigrationFiles(source);
    let previous: string | undefined;
    const seen = new Map<string, string>();
    for (const { file, name } of files) {
      const id = migrationId(source.app, name);
      const twin = seen.get(name);
      if (twin) throw loadError(file, `duplicate migration name "${name}" in app "${source.app}" (also ${twin})`);
      seen.set(name, file);
      let exported: unknown;
      try {
        // Synchronous require: it works inside test VMs, where dynamic import() is unavailable.
        exported = interop(jiti(file));
      } catch (error) {
        throw loadError(file, `cannot be loaded: ${firstLine(errorMessage(error))}`, error);
      }
      if (!isDefinedMigration(exported)) {
        throw loadError(file, 'has no default export made by defineMigration (export default defineMigration({ operations: [...] }))');
      }
      // A file with nothing to run would be recorded applied all the same: most likely a template never filled in.
      if (exported.operations.length === 0) throw loadError(file, 'has no operations: add at least one to its operations list (e.g. new AddFieldData(...)), or delete the file');
      const dependencies = (exported.dependencies ?? (previous ? [previous] : [])).map((dep) => (dep.includes(':') ? dep : migrationId(source.app, dep)));
      loaded.push({ id, app: source.app, name, file, checksum: checksumOf(file), dependencies, definition: exported });
      previous = name;
    }
  }
  return loaded;
}

function listMigrationFiles(source: MigrationSource): { file: string; name: string }[] {
  let entries: string[];
  try {
    if (!statSync(source.dir).isDirectory()) throw new Error('not a directory');
    entries = readdirSync(source.dir);
  } catch (error) {
    throw new DsMigrateError('MIGRATION_LOAD', `Migrations directory ${source.dir} (app "${source.app}") cannot be read: ${errorMessage(error)}.`, { file: source.dir });
  }
  const out: { file: string; name: string }[] = [];
  for (const entry of entries.sort()) {
    if (SKIPPED.test(entry) || !LOOKS_NUMBERED.test(entry)) continue;
    const file = path.join(source.dir, entry);
    const match = MIGRATION_FILE.exec(entry);
    if (!match) throw loadError(file, 'is not named NNNN_name.ts (or .js, .mjs, .cjs): four digits, an underscore, then letters, digits, _ or -');
    out.push({ file, name: match[1] });
  }
  return out;
}

export function checksumOf(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex').slice(0, 16);
}

function loadError(file: string, why: string, cause?: unknown): DsMigrateError {
  return new DsMigrateError('MIGRATION_LOAD', `${file} ${why}.`, { file }, cause === undefined ? undefined : { cause });
}

function firstLine(message: string): string {
  return message.split('\n').slice(0, 3).join(' ').trim();
}

function interop(module: unknown): unknown {
  const m = module as { default?: unknown } | null;
  return m && typeof m === 'object' && 'default' in m ? m.default : m;
}
