// The programmatic API (README, "Programmatic API"): what `dsmigrate migrate`, `plan`, `status` and
// `verify` do, for an application's start-up and its tests, on the same records as the CLI.
import path from 'node:path';
import type { Datastore } from './datastore';
import { LocalExecutor, verifyMigrations, type VerifyReport } from './executors';
import {
  describeStep,
  inEffect,
  loadGraph as loadMigrationGraph,
  migrate as runMigrations,
  pendingPlan,
  recentRuns,
  Recorder,
  type Direction,
  type Executor,
  type MigrateOptions,
  type MigrateSummary,
  type MigrationGraph,
  type MigrationSource,
  type MigrationState,
  type RunDriver,
} from './migrations';

/** Where the migrations' records, lease and runs are, and which migrations there are. */
export interface MigrationsContext {
  store: Datastore;
  /** From `loadGraph`. */
  graph: MigrationGraph;
  /** The CLI's `controlNamespace`; `''` (the default namespace) unless set. */
  controlNamespace?: string;
}

export interface MigrateContext extends MigrationsContext {
  /** Runs each step's shards; a `LocalExecutor` (16 shards at once) in this process unless given. */
  executor?: Executor;
}

/** A migration `migrate` would run, and its steps as `dsmigrate plan` describes them. */
export interface PendingMigration {
  /** `app:name`. */
  id: string;
  file: string;
  description?: string;
  steps: string[];
}

export interface PendingPlan {
  /** `reverse` when the target is behind what is applied. */
  direction: Direction;
  /** In the order `migrate` runs them; empty when there is nothing to do. */
  migrations: PendingMigration[];
}

export interface MigrationStatus {
  /** `app:name`. */
  id: string;
  state: MigrationState | 'pending';
  /** Undefined for a record whose file is gone, or a runtime model's schema migration. */
  file?: string;
  finishedAt?: Date;
  /** The last failure, while the migration is failed. */
  error?: string;
  /** A squashed migration's replaced migrations (`app:name`): it is applied when they all are (docs/squashing.md). */
  replaces?: string[];
}

/** The run under way, started by any process on any machine. */
export interface CurrentRun {
  id: string;
  driver: RunDriver;
  direction: Direction;
  /** Every migration the run set out to apply (or unapply), and the one under way. */
  migrations: string[];
  migration?: string;
  startedAt: Date;
}

export interface MigrationsStatus {
  /** The files' migrations in the order they apply, then records without a file. */
  migrations: MigrationStatus[];
  current?: CurrentRun;
}

/**
 * Loads and orders every app's migration files: `[{app: 'default', dir: 'migrations'}]` is what
 * `dsmigrate` loads by default. A relative `dir` is taken from the working directory.
 */
export function loadGraph(sources: readonly MigrationSource[]): Promise<MigrationGraph> {
  return loadMigrationGraph(sources.map((source) => ({ ...source, dir: path.resolve(source.dir) })));
}

/** `dsmigrate migrate`: applies what is pending (or moves to `options.target`), under the same lock as the CLI. */
export function migrate(ctx: MigrateContext, options: MigrateOptions = {}): Promise<MigrateSummary> {
  return runMigrations({ ...ctx, executor: ctx.executor ?? new LocalExecutor() }, options);
}

/** `dsmigrate plan`: what `migrate` would run, refused with the error `migrate` would give. Reads only. */
export async function plan(ctx: MigrationsContext, options: { target?: string; allowChanged?: boolean } = {}): Promise<PendingPlan> {
  const { plan: pending } = await pendingPlan(ctx.store, ctx.graph, ctx.controlNamespace ?? '', options);
  return {
    direction: pending.direction,
    migrations: pending.migrations.map(({ migration, steps }) => ({ id: migration.id, file: migration.file, description: migration.definition.description, steps: steps.map(describeStep) })),
  };
}

/** `dsmigrate status`: every migration's state, and the run under way. Reads only. */
export async function status(ctx: MigrationsContext): Promise<MigrationsStatus> {
  const namespace = ctx.controlNamespace ?? '';
  const { graph, records } = inEffect(ctx.graph, await new Recorder(ctx.store, namespace).list());
  const replaced = new Set([...(graph.replacements?.values() ?? [])].flat());
  const migrations: MigrationStatus[] = graph.ordered.map((m) => {
    const record = records.get(m.id);
    return { id: m.id, state: record?.state ?? 'pending', file: m.file, finishedAt: record?.finishedAt, error: record?.error, ...(m.replaces ? { replaces: m.replaces } : {}) };
  });
  for (const [id, record] of records) {
    if (!graph.byId.has(id) && !replaced.has(id)) migrations.push({ id, state: record.state, finishedAt: record.finishedAt, error: record.error });
  }
  const running = (await recentRuns(ctx.store, namespace)).find((run) => run.status === 'running');
  const current: CurrentRun | undefined = running && {
    id: running.id,
    driver: running.driver,
    direction: running.direction,
    migrations: running.migrations.map((m) => m.id),
    migration: running.migrations[running.current]?.id,
    startedAt: running.createdAt,
  };
  return { migrations, current };
}

/**
 * `dsmigrate verify`: re-scans what the applied migrations (or `options.target` alone) touched and checks
 * each operation's postcondition on the data as it is now. Reads only.
 */
export function verify(ctx: MigrationsContext, options: { target?: string; concurrency?: number } = {}): Promise<VerifyReport> {
  return verifyMigrations({ ...ctx, ...options });
}
