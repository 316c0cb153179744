import type { Datastore, Entity } from '../datastore';
import { DsMigrateError } from '../errors';
import { LocalExecutor } from '../executors';
import { createTasksClient, startRun, type DispatchSettings, type TasksApi } from '../executors/cloud-tasks';
import { buildGraph, defineMigration, followRun, migrate, type Executor, type LoadedMigration, type MigrationResolver, type RunEvent } from '../migrations';
import { AddFieldData, CopyFieldData, CopyModelData, DeleteModelData, MapFunctionOnEntities, RemoveFieldData, type DefaultValue, type Operation } from '../operations';
import { buildModel } from './build-model';
import { builtinConverter, convertProperty, type ConverterFunction } from './converters';
import { toFieldValue, type ModelShape } from './definition';
import { canonicalJson, sha256Hex } from './hash';
import type { Orphan, SchemaPlan, SchemaStep } from './schema-plan';
import { DefinitionStore } from './store';

/** How schema migrations run: the same runner, lease, records and executors as migration files. */
export interface SchemaRunOptions {
  store: Datastore;
  /** Where the definitions and the models' data live. */
  namespace: string;
  /** Where the records and the lease live (the CLI's controlNamespace). */
  controlNamespace: string;
  executor?: Executor;
  /**
   * Run as a Cloud Tasks run instead (as `migrate --executor cloud-tasks`): started here, its shards run
   * by the worker (which rebuilds the operations from the stored plan), followed here to its end.
   */
  cloudTasks?: SchemaCloudTasks;
  /** Wait this long for another run's lease before failing with LEASE_HELD. */
  lockWaitMs?: number;
  /** The lease's time to live (default the runner's): how long a dead run's lease blocks the next. */
  lockTtlMs?: number;
  /** Entities per transaction of each step. */
  batchSize?: number;
  onEvent?: (event: RunEvent) => void;
}

/** Where and how a schema migration's Cloud Tasks run is dispatched. */
export interface SchemaCloudTasks {
  settings: DispatchSettings;
  /** Default: a client for settings.emulatorHost (or Cloud Tasks itself), closed after the run. */
  tasks?: TasksApi;
  /** What the queue's check found worth telling the operator (its settings differ from the ones asked for). */
  onWarning?: (message: string) => void;
}

/** The record id of a plan: `schema:<model>@v<from>-v<to>` (the namespace is named when it is not the default). */
export function schemaMigrationId(namespace: string, plan: Pick<SchemaPlan, 'model' | 'fromVersion' | 'toVersion'>): string {
  return `schema:${namespace ? `${namespace}/` : ''}${plan.model}@v${plan.fromVersion}-v${plan.toVersion}`;
}

/** The record id of a cleanup: named by the checksum of the orphans it removes. */
export function cleanupMigrationId(namespace: string, checksum: string): string {
  return `schema:${namespace ? `${namespace}/` : ''}cleanup@${checksum}`;
}

type ParsedId = { namespace: string; model: string; fromVersion: number; toVersion: number } | { namespace: string; cleanup: string };

/** What a schema migration id names; every reading of it (a model name may hold a slash), most specific first. */
function parseSchemaMigrationId(id: string): ParsedId[] {
  if (!id.startsWith('schema:')) return [];
  const rest = id.slice('schema:'.length);
  const slash = rest.indexOf('/');
  const readings = [...(slash > 0 ? [{ namespace: rest.slice(0, slash), name: rest.slice(slash + 1) }] : []), { namespace: '', name: rest }];
  const out: ParsedId[] = [];
  for (const { namespace, name } of readings) {
    const cleanup = /^cleanup@([0-9a-f]{16})$/.exec(name);
    if (cleanup) out.push({ namespace, cleanup: cleanup[1] });
    const plan = /^(.+)@v(\d+)-v(\d+)$/s.exec(name);
    if (plan) out.push({ namespace, model: plan[1], fromVersion: Number(plan[2]), toVersion: Number(plan[3]) });
  }
  return out;
}

/**
 * Refuses, before anything runs, a plan with a forced conversion whose function is not at hand: in this
 * process (`converters`), or at all under Cloud Tasks, where the worker that runs the shards holds none.
 */
export function checkConverters(plan: SchemaPlan, converters: Readonly<Record<string, ConverterFunction>>, where: 'local' | 'cloud-tasks'): void {
  for (const step of plan.steps) {
    if (step.type !== 'ConvertField' || step.converter !== 'custom') continue;
    if (where === 'local' && converters[step.field] !== undefined) continue;
    const context = { model: plan.model, field: step.field, fromVersion: plan.fromVersion, toVersion: plan.toVersion };
    const what = `Model "${plan.model}" v${plan.fromVersion}→v${plan.toVersion}: field "${step.field}" is converted by a function given to update() with force`;
    const fix = `Apply it from code with the local executor: factory.applyPendingSchema(${JSON.stringify(plan.model)}, {converters: {${JSON.stringify(step.field)}: fn}}).`;
    throw new DsMigrateError(
      'BAD_INPUT',
      where === 'local' ? `${what}, which this process does not hold. ${fix}` : `${what}; a Cloud Tasks worker does not hold that function, so this plan cannot run under Cloud Tasks. ${fix}`,
      context,
    );
  }
}

/**
 * The operations of a plan, rebuilt from its stored steps and the definition it migrates to, so that
 * every process (and a resumed run) runs the same ones. A forced conversion needs its function, which
 * only the process given it holds.
 */
export function planOperations(plan: SchemaPlan, target: ModelShape, namespace: string, converters: Readonly<Record<string, ConverterFunction>>, batchSize?: number): Operation[] {
  checkConverters(plan, converters, 'local');
  const scan = { namespace, ...(batchSize !== undefined && { batchSize }) };
  const model = buildModel(target, namespace);
  return plan.steps.map((step) => operationOf(step));

  function operationOf(step: SchemaStep): Operation {
    switch (step.type) {
      case 'CopyModelData':
        // Entities the new model saved meanwhile are newer than the old kind's: the copy leaves them.
        return new CopyModelData(step.kind, step.toKind, scan);
      case 'AddFieldData': {
        const field = target.fields.find((f) => f.id === step.fieldId)!;
        // A definition's default, checked when it was stored, as the model's value (AddFieldData stores it as the model would).
        const value = (field.default === undefined ? null : toFieldValue(field.type, field.items, field.default)) as DefaultValue;
        return new AddFieldData(model, step.field, { ...scan, default: value });
      }
      case 'CopyFieldData':
        return new CopyFieldData(step.kind, step.from, step.to, scan);
      case 'Reindex': {
        const reindex = (entity: Entity): void => {
          entity.setIndexed(step.field, step.indexed);
        };
        return new MapFunctionOnEntities(step.kind, reindex, scan);
      }
      case 'ConvertField': {
        // A custom converter at hand: checkConverters above.
        const converter = (step.converter === 'custom' ? converters[step.field] : builtinConverter(step.from, step.to))!;
        const conversion = { model: plan.model, field: step.field, fromVersion: plan.fromVersion, toVersion: plan.toVersion, from: step.from, to: step.to, converter };
        const convert = (entity: Entity): void => {
          convertProperty(entity, step.field, conversion);
        };
        return new MapFunctionOnEntities(step.kind, convert, scan);
      }
    }
  }
}

/** Operations as one migration of the runner's: the same shape whichever process builds it, so its checksum matches. */
function schemaMigration(migration: { id: string; checksum: string; file: string; description: string }, operations: Operation[]): LoadedMigration {
  const [app, ...rest] = migration.id.split(':');
  return {
    id: migration.id,
    app,
    name: rest.join(':'),
    file: migration.file,
    checksum: migration.checksum,
    dependencies: [],
    definition: defineMigration({ operations, description: migration.description }),
  };
}

/** A plan as a migration: its operations rebuilt from the stored steps and the definition it migrates to. */
export function planMigration(namespace: string, plan: SchemaPlan, target: ModelShape, converters: Readonly<Record<string, ConverterFunction>>, batchSize?: number): LoadedMigration {
  return schemaMigration(
    { id: schemaMigrationId(namespace, plan), checksum: plan.checksum, file: `<dynamic:${plan.model}>`, description: `schema of ${plan.model} v${plan.fromVersion}→v${plan.toVersion}` },
    planOperations(plan, target, namespace, converters, batchSize),
  );
}

/** The checksum of a cleanup: of the ids of the orphans it removes. */
function cleanupChecksum(orphans: readonly Orphan[]): string {
  return sha256Hex(canonicalJson(orphans.map((o) => o.id).sort())).slice(0, 16);
}

/** A cleanup as a migration: RemoveFieldData and DeleteModelData, named by what it removes. */
export function cleanupMigration(namespace: string, orphans: readonly Orphan[], batchSize?: number): LoadedMigration {
  const scan = { namespace, ...(batchSize !== undefined && { batchSize }) };
  // A kind deleted whole needs no property removals in it.
  const kinds = new Set(orphans.filter((o) => o.type === 'kind').map((o) => o.kind));
  const operations: Operation[] = [];
  for (const kind of [...kinds].sort()) operations.push(new DeleteModelData(kind, scan));
  const properties = new Set(orphans.filter((o) => o.type === 'property' && !kinds.has(o.kind)).map((o) => `${o.kind}\u0000${o.property!}`));
  for (const entry of [...properties].sort()) {
    const [kind, property] = entry.split('\u0000');
    operations.push(new RemoveFieldData(kind, property, scan));
  }
  const checksum = cleanupChecksum(orphans);
  return schemaMigration({ id: cleanupMigrationId(namespace, checksum), checksum, file: '<dynamic:cleanup>', description: `cleanup of ${orphans.length} orphan(s)` }, operations);
}

/** Runs one migration through the runner (local executor) or as a Cloud Tasks run: recorded, under the lease, resumable. */
async function runMigration(options: SchemaRunOptions, migration: LoadedMigration): Promise<void> {
  const graph = buildGraph([migration]);
  if (options.cloudTasks === undefined) {
    await migrate(
      { store: options.store, graph, executor: options.executor ?? new LocalExecutor(), controlNamespace: options.controlNamespace },
      { lockWaitMs: options.lockWaitMs, lockTtlMs: options.lockTtlMs, onEvent: options.onEvent },
    );
    return;
  }
  const { settings } = options.cloudTasks;
  const tasks = options.cloudTasks.tasks ?? createTasksClient(settings.emulatorHost);
  try {
    const started = await startRun({
      store: options.store,
      graph,
      tasks,
      settings,
      controlNamespace: options.controlNamespace,
      lockWaitMs: options.lockWaitMs,
      command: `schema ${migration.id} --executor cloud-tasks`,
      onEvent: options.onEvent,
    });
    for (const warning of started.warnings) options.cloudTasks.onWarning?.(warning);
    if (started.run === undefined) return; // applied already
    await followRun({ store: options.store, namespace: started.run.namespace, runId: started.run.id, onEvent: options.onEvent });
  } finally {
    if (options.cloudTasks.tasks === undefined) await tasks.close();
  }
}

/** Runs a plan (nothing when its record is already applied). */
export async function runPlan(options: SchemaRunOptions, plan: SchemaPlan, target: ModelShape, converters: Readonly<Record<string, ConverterFunction>>): Promise<void> {
  if (plan.steps.length === 0) return;
  if (options.cloudTasks) checkConverters(plan, converters, 'cloud-tasks');
  await runMigration(options, planMigration(options.namespace, plan, target, converters, options.batchSize));
}

/** Removes orphaned properties and kinds as one migration; what it removes is stored first, for the workers that rebuild it. */
export async function runCleanup(options: SchemaRunOptions, definitions: DefinitionStore, orphans: readonly Orphan[]): Promise<string> {
  const migration = cleanupMigration(options.namespace, orphans, options.batchSize);
  await definitions.saveCleanup(migration.checksum, orphans);
  await runMigration(options, migration);
  return migration.id;
}

/**
 * Resolves runtime models' schema migrations (`schema:[ns/]<model>@v<from>-v<to>`, `schema:[ns/]cleanup@<checksum>`)
 * by rebuilding them from what is stored: the plan and the definition it migrates to, or the cleanup's
 * orphans. For a process that did not plan the run: a Cloud Tasks worker. A forced conversion's function
 * is not stored: such a plan is refused (BAD_INPUT, naming the model, field and versions).
 */
export function schemaMigrationResolver(store: Datastore, options: { batchSize?: number } = {}): MigrationResolver {
  // Stored plans and cleanups never change: what was rebuilt once serves every later task.
  const cache = new Map<string, LoadedMigration>();
  return async (id) => {
    const cached = cache.get(id);
    if (cached) return cached;
    for (const parsed of parseSchemaMigrationId(id)) {
      const definitions = new DefinitionStore(store, parsed.namespace);
      let migration: LoadedMigration | undefined;
      if ('cleanup' in parsed) {
        const orphans = await definitions.readCleanup(parsed.cleanup);
        if (orphans !== undefined) migration = cleanupMigration(parsed.namespace, orphans, options.batchSize);
      } else {
        const stored = await definitions.readMigration(parsed.model, parsed.toVersion);
        const version = stored?.plan.fromVersion === parsed.fromVersion ? await definitions.readVersion(parsed.model, parsed.toVersion) : undefined;
        if (stored && version) {
          checkConverters(stored.plan, {}, 'cloud-tasks');
          migration = planMigration(parsed.namespace, stored.plan, definitions.decode(version), {}, options.batchSize);
        }
      }
      if (migration?.id === id) {
        cache.set(id, migration);
        return migration;
      }
    }
    return undefined;
  };
}
