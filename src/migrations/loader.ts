import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { createJiti } from 'jiti';
import { DsMigrateError, errorMessage, quotedLoadError, sentence } from '../errors';
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
  /** The ids of the migrations it stands in for (a squashed migration: docs/squashing.md), resolved as dependencies are. */
  replaces?: string[];
  definition: DefinedMigration;
}

/** The extensions a migration (or a helper beside it) may have, .ts first. */
const EXTENSIONS = ['ts', 'js', 'mjs', 'cjs', 'mts', 'cts'];
const MIGRATION_FILE = new RegExp(`^(\\d{4}_[A-Za-z0-9_-]+)\\.(${EXTENSIONS.join('|')})$`);
const NAMING = `NNNN_name.ts (or .${EXTENSIONS.slice(1).join(', .')}): four digits, an underscore, then letters, digits, _ or -`;
const LOOKS_NUMBERED = /^\d/;
const SCRIPT = new RegExp(`\\.(${EXTENSIONS.join('|')})$`);
const DEFINES_MIGRATION = /\bdefineMigration\s*\(/;
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
    const seen = new Map<string, string>();
    const found: { file: string; name: string; definition: DefinedMigration }[] = [];
    for (const { file, name } of files) {
      const twin = seen.get(name);
      if (twin) throw loadError(file, `duplicate migration name "${name}" in app "${source.app}" (also ${twin})`);
      seen.set(name, file);
      let exported: unknown;
      try {
        // Synchronous require: it works inside test VMs, where dynamic import() is unavailable.
        exported = interop(jiti(file));
      } catch (error) {
        throw loadError(file, `cannot be loaded: ${quotedLoadError(error)}`, error);
      }
      if (!isDefinedMigration(exported)) {
        throw loadError(file, 'has no default export made by defineMigration (export default defineMigration({ operations: [...] }))');
      }
      // A file with nothing to run would be recorded applied all the same: most likely a template never filled in.
      // One that records the models' state (dsmigrate makemigrations) is a migration of the state alone.
      if (exported.operations.length === 0 && exported.state === undefined)
        throw loadError(file, 'has no operations: add at least one to its operations list (e.g. new AddFieldData(...)), or delete the file');
      if (exported.replaces && !exported.dependencies) {
        throw loadError(file, 'replaces other migrations but does not list its dependencies: list them (`dependencies: []` for none), as `dsmigrate squash` writes them');
      }
      if (exported.replaces?.includes(name)) throw loadError(file, `replaces itself: remove "${name}" from its replaces list`);
      found.push({ file, name, definition: exported });
    }
    const resolve = (dep: string) => (dep.includes(':') ? dep : migrationId(source.app, dep));
    let previous: string | undefined;
    for (const { file, name, definition } of inImplicitOrder(found)) {
      const dependencies = (definition.dependencies ?? (previous ? [previous] : [])).map(resolve);
      const replaces = definition.replaces?.map(resolve);
      loaded.push({ id: migrationId(source.app, name), app: source.app, name, file, checksum: checksumOf(file), dependencies, ...(replaces ? { replaces } : {}), definition });
      previous = name;
    }
  }
  return loaded;
}

/**
 * The files in the order that gives each its default dependency (the file before it): by name, except
 * that a squashed migration (whose number is its first replaced one's) comes right after the last one it
 * replaces. So the replaced ones keep depending on each other, and the file after the range depends on
 * the squashed migration (src/migrations/graph.ts points it at the last replaced one where those run).
 */
function inImplicitOrder<T extends { name: string; definition: DefinedMigration }>(found: readonly T[]): T[] {
  const sortKey = (f: T) => {
    const last = f.definition.replaces?.at(-1);
    return last === undefined ? f.name : `${last.slice(last.indexOf(':') + 1)}\uffff${f.name}`;
  };
  return [...found].sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : sortKey(a) > sortKey(b) ? 1 : 0));
}

function listMigrationFiles(source: MigrationSource): { file: string; name: string }[] {
  let entries: string[];
  try {
    if (!statSync(source.dir).isDirectory()) throw new Error('not a directory');
    entries = readdirSync(source.dir);
  } catch (error) {
    throw new DsMigrateError('MIGRATION_LOAD', `Migrations directory ${source.dir} (app "${source.app}") cannot be read: ${sentence(errorMessage(error))}`, { file: source.dir });
  }
  const out: { file: string; name: string }[] = [];
  for (const entry of entries.sort()) {
    if (SKIPPED.test(entry)) continue;
    const file = path.join(source.dir, entry);
    // A file without a number is a helper the migrations import, unless it defines a migration: then it is one misnamed, which would otherwise never run.
    if (!LOOKS_NUMBERED.test(entry)) {
      if (SCRIPT.test(entry) && DEFINES_MIGRATION.test(readFileSync(file, 'utf8'))) {
        throw loadError(file, `defines a migration but is not numbered, so it would never run: rename it to NNNN_${entry}, NNNN the number after the app's last migration`);
      }
      continue;
    }
    const match = MIGRATION_FILE.exec(entry);
    if (!match) throw loadError(file, `is not named ${NAMING}`);
    out.push({ file, name: match[1] });
  }
  return out;
}

export function checksumOf(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex').slice(0, 16);
}

function loadError(file: string, why: string, cause?: unknown): DsMigrateError {
  return new DsMigrateError('MIGRATION_LOAD', sentence(`${file} ${why}`), { file }, cause === undefined ? undefined : { cause });
}

function interop(module: unknown): unknown {
  const m = module as { default?: unknown } | null;
  return m && typeof m === 'object' && 'default' in m ? m.default : m;
}
