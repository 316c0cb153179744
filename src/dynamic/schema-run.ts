import type { Datastore, Entity } from '../datastore';
import { DsMigrateError } from '../errors';
import { LocalExecutor } from '../executors';
import { buildGraph, defineMigration, migrate, type Executor, type LoadedMigration, type RunEvent } from '../migrations';
import { AddFieldData, CopyFieldData, CopyModelData, DeleteModelData, MapFunctionOnEntities, RemoveFieldData, type DefaultValue, type Operation } from '../operations';
import { buildModel } from './build-model';
import { builtinConverter, convertProperty, type ConverterFunction } from './converters';
import { toFieldValue, type ModelShape } from './definition';
import { canonicalJson, sha256Hex } from './hash';
import type { Orphan, SchemaPlan, SchemaStep } from './schema-plan';

/** How schema migrations run: the same runner, lease, records and executors as migration files. */
export interface SchemaRunOptions {
  store: Datastore;
  /** Where the definitions and the models' data live. */
  namespace: string;
  /** Where the records and the lease live (the CLI's controlNamespace). */
  controlNamespace: string;
  executor?: Executor;
  /** Wait this long for another run's lease before failing with LOCKED. */
  lockWaitMs?: number;
  /** The lease's time to live (default the runner's): how long a dead run's lease blocks the next. */
  lockTtlMs?: number;
  /** Entities per transaction of each step. */
  batchSize?: number;
  onEvent?: (event: RunEvent) => void;
}

/** The record id of a plan: `schema:<model>@v<from>-v<to>` (the namespace is named when it is not the default). */
export function schemaMigrationId(namespace: string, plan: Pick<SchemaPlan, 'model' | 'fromVersion' | 'toVersion'>): string {
  return `schema:${namespace ? `${namespace}/` : ''}${plan.model}@v${plan.fromVersion}-v${plan.toVersion}`;
}

/**
 * The operations of a plan, rebuilt from its stored steps and the definition it migrates to, so that
 * every process (and a resumed run) runs the same ones. A forced conversion needs its function, which
 * only the process given it holds.
 */
export function planOperations(plan: SchemaPlan, target: ModelShape, namespace: string, converters: Readonly<Record<string, ConverterFunction>>, batchSize?: number): Operation[] {
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
        const converter = step.converter === 'custom' ? converters[step.field] : builtinConverter(step.from, step.to);
        if (converter === undefined) {
          throw new DsMigrateError(
            'BAD_INPUT',
            `Model "${plan.model}" v${plan.fromVersion}→v${plan.toVersion}: field "${step.field}" is converted by a function given to update() with force, which this process does not hold. ` +
              `Apply it from code: factory.applyPendingSchema(${JSON.stringify(plan.model)}, {converters: {${JSON.stringify(step.field)}: fn}}).`,
            { model: plan.model, field: step.field, fromVersion: plan.fromVersion, toVersion: plan.toVersion },
          );
        }
        const conversion = { model: plan.model, field: step.field, fromVersion: plan.fromVersion, toVersion: plan.toVersion, from: step.from, to: step.to, converter };
        const convert = (entity: Entity): void => {
          convertProperty(entity, step.field, conversion);
        };
        return new MapFunctionOnEntities(step.kind, convert, scan);
      }
    }
  }
}

/** Runs a list of operations as one migration through the migrations runner: recorded, under the lease, resumable. */
export async function runAsMigration(options: SchemaRunOptions, migration: { id: string; checksum: string; file: string; description: string }, operations: Operation[]): Promise<void> {
  const [app, ...rest] = migration.id.split(':');
  const loaded: LoadedMigration = {
    id: migration.id,
    app,
    name: rest.join(':'),
    file: migration.file,
    checksum: migration.checksum,
    dependencies: [],
    definition: defineMigration({ operations, description: migration.description }),
  };
  await migrate(
    { store: options.store, graph: buildGraph([loaded]), executor: options.executor ?? new LocalExecutor(), controlNamespace: options.controlNamespace },
    { lockWaitMs: options.lockWaitMs, lockTtlMs: options.lockTtlMs, onEvent: options.onEvent },
  );
}

/** Runs a plan (nothing when its record is already applied). */
export async function runPlan(options: SchemaRunOptions, plan: SchemaPlan, target: ModelShape, converters: Readonly<Record<string, ConverterFunction>>): Promise<void> {
  if (plan.steps.length === 0) return;
  const operations = planOperations(plan, target, options.namespace, converters, options.batchSize);
  await runAsMigration(
    options,
    { id: schemaMigrationId(options.namespace, plan), checksum: plan.checksum, file: `<dynamic:${plan.model}>`, description: `schema of ${plan.model} v${plan.fromVersion}→v${plan.toVersion}` },
    operations,
  );
}

/** Removes orphaned properties and kinds: RemoveFieldData and DeleteModelData, as one migration named by what it removes. */
export async function runCleanup(options: SchemaRunOptions, orphans: readonly Orphan[]): Promise<string> {
  const scan = { namespace: options.namespace, ...(options.batchSize !== undefined && { batchSize: options.batchSize }) };
  // A kind deleted whole needs no property removals in it.
  const kinds = new Set(orphans.filter((o) => o.type === 'kind').map((o) => o.kind));
  const operations: Operation[] = [];
  for (const kind of [...kinds].sort()) operations.push(new DeleteModelData(kind, scan));
  const properties = new Set(orphans.filter((o) => o.type === 'property' && !kinds.has(o.kind)).map((o) => `${o.kind}\u0000${o.property!}`));
  for (const entry of [...properties].sort()) {
    const [kind, property] = entry.split('\u0000');
    operations.push(new RemoveFieldData(kind, property, scan));
  }
  const checksum = sha256Hex(canonicalJson(orphans.map((o) => o.id).sort())).slice(0, 16);
  const id = `schema:${options.namespace ? `${options.namespace}/` : ''}cleanup@${checksum}`;
  await runAsMigration(options, { id, checksum, file: '<dynamic:cleanup>', description: `cleanup of ${orphans.length} orphan(s)` }, operations);
  return id;
}
