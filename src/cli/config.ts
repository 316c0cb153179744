import { existsSync } from 'node:fs';
import path from 'node:path';
import { createJiti } from 'jiti';
import { Key, type StoreOptions } from '../datastore';
import { DEFAULT_CONCURRENCY } from '../executors';
import type { CloudTasksConfig } from '../executors/cloud-tasks';
import { DsMigrateError, quotedLoadError } from '../errors';
import type { MigrationSource } from '../migrations';
import { DEFAULT_UNDO_RETAIN, projectUndoProblem, type ProjectUndo } from '../operations';

/** `dsmigrate.config.{ts,js,json}`: every setting has a flag and most an environment variable too. */
export interface DsMigrateConfig {
  projectId?: string;
  databaseId?: string;
  emulatorHost?: string;
  keyFilename?: string;
  /** One directory (app "default") or `{app: dir}`. */
  migrations?: string | Record<string, string>;
  /** Modules (files or directories) that define the app's models, for `dsmigrate indexes` (docs/models.md). */
  models?: string | string[];
  /** Namespace of the control kinds (records, lock, shard state). */
  controlNamespace?: string;
  /** Shards run at once by the local executor. */
  concurrency?: number;
  lockTtlSeconds?: number;
  /** Entity groups per transaction: 'auto', a number, or null for none. */
  maxEntityGroupsPerTransaction?: number | null | 'auto';
  /** `migrate --executor cloud-tasks` and `dsmigrate worker` (docs/cloud-tasks.md); DSMIGRATE_* variables override it. */
  cloudTasks?: CloudTasksConfig;
  /** As `--strict` on migrate, plan and verify: an operation whose kind has no entities is refused (exit 2), for CI. */
  strict?: boolean;
  /** Operations of these types keep before-images (docs/undo.md) where their own `undo` option says nothing; `retain` 7 days by default. */
  undo?: { operations: string[]; retain?: string };
}

export function defineConfig(config: DsMigrateConfig): DsMigrateConfig {
  return config;
}

export const CONFIG_FILES = ['dsmigrate.config.ts', 'dsmigrate.config.js', 'dsmigrate.config.json'];

export interface ResolvedConfig {
  store: StoreOptions;
  sources: MigrationSource[];
  controlNamespace: string;
  concurrency: number;
  lockTtlMs: number;
  /** `strict` in the config file; `--strict` turns it on too. */
  strict: boolean;
  configFile?: string;
  cloudTasks?: CloudTasksConfig;
  /** `undo` of the config file, checked. */
  undo?: ProjectUndo;
}

export interface ConfigFlags {
  project?: string;
  database?: string;
  emulatorHost?: string;
  dir?: string[];
  controlNamespace?: string;
  concurrency?: number;
  config?: string;
}

export async function loadConfigFile(cwd: string, explicit?: string): Promise<{ file?: string; config: DsMigrateConfig }> {
  const file = explicit ? path.resolve(cwd, explicit) : CONFIG_FILES.map((f) => path.join(cwd, f)).find((f) => existsSync(f));
  if (!file) return { config: {} };
  if (!existsSync(file)) throw new DsMigrateError('BAD_INPUT', `Config file ${file} does not exist.`, { file });
  try {
    const jiti = createJiti(__filename, { moduleCache: false, interopDefault: true });
    const loaded: unknown = jiti(file);
    const config = ((loaded as { default?: unknown })?.default ?? loaded) as DsMigrateConfig;
    if (typeof config !== 'object' || config === null) throw new Error('it must export an object');
    return { file, config };
  } catch (error) {
    throw new DsMigrateError('BAD_INPUT', `Config file ${file} cannot be loaded: ${quotedLoadError(error)}`, { file });
  }
}

/** `--dir billing=./billing/migrations` or `--dir ./migrations` (app "default"). */
export function parseDirs(dirs: readonly string[], cwd: string): MigrationSource[] {
  const sources = dirs.map((spec) => {
    const eq = spec.indexOf('=');
    return eq > 0 ? { app: spec.slice(0, eq), dir: path.resolve(cwd, spec.slice(eq + 1)) } : { app: 'default', dir: path.resolve(cwd, spec) };
  });
  const apps = new Set<string>();
  for (const s of sources) {
    if (!/^[A-Za-z0-9_-]+$/.test(s.app)) throw new DsMigrateError('BAD_INPUT', `App label "${s.app}" may hold only letters, digits, _ and -.`);
    if (apps.has(s.app)) throw new DsMigrateError('BAD_INPUT', `Two migration directories have the app label "${s.app}": label each one, e.g. --dir billing=./billing/migrations.`);
    apps.add(s.app);
  }
  return sources;
}

/** Precedence, highest first: command-line flags, environment variables, the config file, defaults. */
export async function resolveConfig(flags: ConfigFlags, cwd = process.cwd(), env: NodeJS.ProcessEnv = process.env): Promise<ResolvedConfig> {
  const { file, config } = await loadConfigFile(cwd, flags.config);
  const base = file ? path.dirname(file) : cwd;
  const configDirs = typeof config.migrations === 'string' ? [config.migrations] : Object.entries(config.migrations ?? {}).map(([app, dir]) => `${app}=${dir}`);
  const sources = flags.dir?.length ? parseDirs(flags.dir, cwd) : parseDirs(configDirs.length ? configDirs : ['migrations'], base);
  if (config.cloudTasks !== undefined && (typeof config.cloudTasks !== 'object' || config.cloudTasks === null || Array.isArray(config.cloudTasks))) {
    throw new DsMigrateError('BAD_INPUT', `cloudTasks in ${file} must be an object.`, { file });
  }
  const concurrency = flags.concurrency ?? numberFrom(env.DSMIGRATE_CONCURRENCY) ?? config.concurrency ?? DEFAULT_CONCURRENCY;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    const source = flags.concurrency !== undefined ? '--concurrency' : numberFrom(env.DSMIGRATE_CONCURRENCY) !== undefined ? 'DSMIGRATE_CONCURRENCY' : `concurrency in ${file}`;
    throw new DsMigrateError(
      'BAD_INPUT',
      `${source} must be a whole number of shards at once, at least 1 (the default is ${DEFAULT_CONCURRENCY}), not ${typeof concurrency === 'number' && Number.isNaN(concurrency) ? 'a number' : JSON.stringify(concurrency)}.`,
      { file, field: source },
    );
  }
  const lockTtlSeconds = config.lockTtlSeconds ?? 60;
  // Below a second the lease would expire before its first renewal; a string or NaN would expire at once.
  if (typeof lockTtlSeconds !== 'number' || !Number.isFinite(lockTtlSeconds) || lockTtlSeconds < 1) {
    throw new DsMigrateError('BAD_INPUT', `lockTtlSeconds in ${file} must be a number of seconds, at least 1 (the default is 60), not ${JSON.stringify(lockTtlSeconds)}.`, {
      file,
      field: 'lockTtlSeconds',
    });
  }
  if (config.strict !== undefined && typeof config.strict !== 'boolean') {
    throw new DsMigrateError('BAD_INPUT', `strict in ${file} must be true or false, not ${JSON.stringify(config.strict)}.`, { file, field: 'strict' });
  }
  const undoProblem = config.undo === undefined ? undefined : projectUndoProblem(config.undo);
  if (undoProblem) throw new DsMigrateError('BAD_INPUT', `undo in ${file} ${undoProblem}.`, { file, field: 'undo' });
  return {
    configFile: file,
    strict: config.strict ?? false,
    ...(config.undo ? { undo: { operations: config.undo.operations, retain: config.undo.retain ?? DEFAULT_UNDO_RETAIN } } : {}),
    sources,
    concurrency,
    controlNamespace: controlNamespace(flags, env, config, file),
    lockTtlMs: lockTtlSeconds * 1000,
    cloudTasks: config.cloudTasks,
    store: {
      projectId: flags.project ?? env.DATASTORE_PROJECT_ID ?? env.GOOGLE_CLOUD_PROJECT ?? config.projectId,
      databaseId: flags.database ?? env.DATASTORE_DATABASE_ID ?? config.databaseId,
      emulatorHost: flags.emulatorHost ?? env.DATASTORE_EMULATOR_HOST ?? config.emulatorHost,
      keyFilename: env.GOOGLE_APPLICATION_CREDENTIALS ?? config.keyFilename,
      maxEntityGroupsPerTransaction: config.maxEntityGroupsPerTransaction,
    },
  };
}

/** Checked before any RPC, naming where it came from, so that a bad name is not first met as an RPC error mid-run. */
function controlNamespace(flags: ConfigFlags, env: NodeJS.ProcessEnv, config: DsMigrateConfig, file: string | undefined): string {
  const [namespace, source] =
    flags.controlNamespace !== undefined
      ? [flags.controlNamespace, '--control-namespace']
      : env.DSMIGRATE_CONTROL_NAMESPACE !== undefined
        ? [env.DSMIGRATE_CONTROL_NAMESPACE, 'DSMIGRATE_CONTROL_NAMESPACE']
        : [config.controlNamespace ?? '', `controlNamespace in ${file}`];
  const problem = Key.namespaceProblem(namespace);
  if (problem) {
    throw new DsMigrateError('BAD_INPUT', `${source}: ${problem}. A namespace is '' (the default one) or up to 100 letters, digits, '.', '-' and '_'.`, { file, field: source });
  }
  return namespace;
}

function numberFrom(value: string | undefined): number | undefined {
  return value === undefined || value === '' ? undefined : Number(value);
}

/**
 * The modules that define the app's models (for `indexes` and `introspect`): `--models` paths relative to
 * the working directory, else the config file's `models`, relative to the file. Empty when neither names any.
 */
export async function modelModules(flags: { models?: string[]; config?: string }, cwd = process.cwd()): Promise<string[]> {
  if (flags.models?.length) return flags.models.map((p) => path.resolve(cwd, p));
  const { file, config } = await loadConfigFile(cwd, flags.config);
  if (config.models === undefined) return [];
  const configured = typeof config.models === 'string' ? [config.models] : config.models;
  if (!Array.isArray(configured) || configured.some((p) => typeof p !== 'string')) {
    throw new DsMigrateError('BAD_INPUT', `models in ${file} must be a path or a list of paths to the modules that define the models.`, { file, field: 'models' });
  }
  return configured.map((p) => path.resolve(file ? path.dirname(file) : cwd, p));
}
