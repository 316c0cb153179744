import type { Datastore } from '../datastore';
import { DsMigrateError } from '../errors';
import type { Operation } from '../operations';
import { planRun, type MigrationGraph } from './graph';
import type { LoadedMigration } from './loader';
import { Recorder, type Direction, type MigrationRecord } from './recorder';

/** One operation of a migration as a run carries it out: its place in the file, and the operation to run (the reverse, going back). */
export interface MigrationStep {
  index: number;
  operation: Operation;
}

export interface PlannedMigration {
  migration: LoadedMigration;
  /** In the order to run them: the file's order forward, reversed going back. */
  steps: MigrationStep[];
}

export interface Plan {
  direction: Direction;
  migrations: PlannedMigration[];
}

export interface PlanOptions {
  target?: string;
  allowChanged?: boolean;
}

/** Files edited after they were applied would make history lie; refuse unless told otherwise. */
export function checkChecksums(graph: MigrationGraph, records: ReadonlyMap<string, MigrationRecord>, allowChanged = false): void {
  if (allowChanged) return;
  for (const m of graph.ordered) {
    const record = records.get(m.id);
    if (record && record.checksum !== m.checksum) {
      throw new DsMigrateError(
        'MIGRATION_LOAD',
        `${m.file} was changed after it was ${record.state} (checksum ${record.checksum}, now ${m.checksum}). Revert the edit and add a new migration, pass --allow-changed, ` +
          `or, if it failed, restart it with \`dsmigrate migrate --restart ${m.id}\`.`,
        { file: m.file, migration: m.id },
      );
    }
  }
}

/**
 * The steps of a migration in a direction. Going back, an operation that never took effect is left
 * out (it has nothing to undo), so a migration that failed before its irreversible operations ran
 * can still be backed out; one whose irreversible operation did run is refused, before anything changes.
 */
export function stepsFor(m: LoadedMigration, direction: Direction, record?: MigrationRecord): MigrationStep[] {
  const operations = m.definition.operations;
  if (record && record.operations.length !== operations.length) {
    throw new DsMigrateError(
      'CONFLICT',
      `${m.file} has ${operations.length} operation(s), but its record has ${record.operations.length}: the file changed while the migration was ${record.state}. ` +
        `Restart it with \`dsmigrate migrate --restart ${m.id}\` (what it already changed stays changed).`,
      { file: m.file, migration: m.id },
    );
  }
  if (direction === 'forward') return operations.map((operation, index) => ({ index, operation }));
  // An operation ran if it is in effect somewhere, or has a job that may have committed batches.
  const ran = operations.map((operation, index) => ({ index, operation })).filter(({ index }) => !record || !record.operations[index].applied.isNone || record.operations[index].job !== undefined);
  const irreversible = ran.filter(({ operation }) => !operation.reversible);
  if (irreversible.length > 0) {
    throw new DsMigrateError(
      'BAD_INPUT',
      `Cannot unapply ${m.id} (${m.file}): ${irreversible.map(({ operation }) => operation.describe()).join('; ')} ${irreversible.length === 1 ? 'is' : 'are'} irreversible. ` +
        'Declare a reverse on the operation, or use `dsmigrate migrate --fake <target>` to record it unapplied without changing data.',
      { file: m.file, migration: m.id },
    );
  }
  return ran.map(({ index, operation }) => ({ index, operation: operation.reverse() })).reverse();
}

/** A plan from records already read (dry runs and `plan` read them without the lease). */
export async function planWith(store: Datastore, graph: MigrationGraph, records: ReadonlyMap<string, MigrationRecord>, options: PlanOptions = {}): Promise<Plan> {
  checkChecksums(graph, records, options.allowChanged);
  const { direction, migrations } = planRun(graph, records, options.target);
  const planned = migrations.map((migration) => ({ migration, steps: stepsFor(migration, direction, records.get(migration.id)) }));
  for (const { steps } of planned) for (const { operation } of steps) await operation.validate(store);
  return { direction, migrations: planned };
}

/**
 * What `migrate` would run from the records as they are now, refused exactly as `migrate` refuses it,
 * so that a plan that is shown (`plan`, `migrate --check`) is one that `migrate` accepts. Takes no lease.
 */
export async function pendingPlan(
  store: Datastore,
  graph: MigrationGraph,
  controlNamespace: string,
  options: PlanOptions = {},
): Promise<{ plan: Plan; records: ReadonlyMap<string, MigrationRecord> }> {
  const records = await new Recorder(store, controlNamespace).list();
  return { plan: await planWith(store, graph, records, options), records };
}
