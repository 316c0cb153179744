import { jobRef } from '../control';
import type { Datastore } from '../datastore';
import { DsMigrateError } from '../errors';
import { backOutOf, canBackOut, checkUndoConflicts, isDataOperation, isRunFunction, type Operation, type UndoConflicts } from '../operations';
import { jobChangedData } from '../sharding';
import { Coverage } from './coverage';
import { graphFor, isApplied, planRun, type MigrationGraph } from './graph';
import type { LoadedMigration } from './loader';
import { Recorder, type Direction, type MigrationRecord, type OperationRecord } from './recorder';

/** One operation of a migration as a run carries it out: its place in the file, and the operation to run (the reverse, going back). */
export interface MigrationStep {
  index: number;
  operation: Operation;
  /** Going back, declared `reverse: 'noop'`: the step records the operation undone and leaves the data as it is. */
  noop?: true;
  /** Going back, an operation with no reverse, in a plan made only to be shown (`dsmigrate plan`): `migrate` refuses it. */
  irreversible?: true;
}

export interface PlannedMigration {
  migration: LoadedMigration;
  /** It has a record: a run began it before. */
  started: boolean;
  /** In the order to run them: the file's order forward, reversed going back. */
  steps: MigrationStep[];
}

export interface Plan {
  direction: Direction;
  migrations: PlannedMigration[];
  /** The target the run was given, as `app:name` or `app:zero`: the run records it, so that a failed run's advice names it. */
  target?: string;
}

export interface PlanOptions {
  target?: string;
  allowChanged?: boolean;
  /** `--fake`: nothing runs, so no step needs a reverse, a check against the data or a consistent history to fake into. */
  fake?: boolean;
  /** `dsmigrate plan`: an irreversible step is marked (MigrationStep.irreversible) rather than refused. */
  markIrreversible?: boolean;
  /** `--undo-conflicts`: what a back-out from before-images does with entities changed since (default `refuse`). */
  undoConflicts?: UndoConflicts;
}

/**
 * The step that carries out operation `index` of a file in a direction: itself, its reverse, or a no-op
 * back-out. `conflicts` goes to a back-out from before-images; the run stores it, so that every process that
 * rebuilds the step (Run.current) makes the same one.
 */
export function stepOf(operation: Operation, index: number, direction: Direction, conflicts: UndoConflicts): MigrationStep {
  if (direction === 'forward') return { index, operation };
  return operation.leavesDataOnBackOut ? { index, operation, noop: true } : { index, operation: backOutOf(operation, index, conflicts) };
}

/** One line for a step, the same in `plan`, `migrate` and `status`. */
export function describeStep(step: MigrationStep): string {
  if (step.noop) return `${step.operation.describe()}: left as it is (reverse: 'noop')`;
  if (step.irreversible) return `${step.operation.describe()}: IRREVERSIBLE`;
  return step.operation.describe();
}

/** How a migration failed, as its record or the run's error says: the direction, the run's target, the error's code. */
export interface Failure {
  direction: Direction;
  target?: string;
  code?: string;
}

/**
 * How to go on after a migration failed, the same advice wherever a failure is shown (the CLI's error,
 * `status`, the docs). Going forward: run again after a passing error, keep the done batches with a fixed
 * file, or start over; or back out. Every command names the run's target: without it, `migrate` would
 * apply the migration again instead of backing it out, or apply what is pending past the target.
 */
export function recoveryAdvice(migration: string, failure: Failure): string {
  if (failure.direction === 'reverse') {
    // A record stored before back-outs recorded their target cannot name it.
    const target = failure.target ?? '<the migration before it>';
    // CONFLICT is what the check before restoring before-images fails with (docs/undo.md, Conflicts).
    if (failure.code === 'CONFLICT') {
      return (
        `To finish the back-out, \`dsmigrate migrate ${target} --undo-conflicts overwrite\` restores the entities changed since anyway (those later writes are lost), ` +
        `or \`dsmigrate migrate ${target} --undo-conflicts skip\` leaves them as they are and restores the rest.`
      );
    }
    return (
      `After a passing error (Datastore unavailable, a timeout), run \`dsmigrate migrate ${target}\` again: it resumes the back-out where it stopped. ` +
      `After fixing the migration's file, \`dsmigrate migrate ${target} --allow-changed\` resumes it with the fixed file.`
    );
  }
  const to = failure.target === undefined ? '' : ` ${failure.target}`;
  return (
    `After a passing error (Datastore unavailable, a timeout), run \`dsmigrate migrate${to}\` again: it resumes where it stopped. ` +
    `After fixing the migration's file, \`dsmigrate migrate${to} --allow-changed\` resumes with the fixed file and keeps the batches already done. ` +
    `To run it from the start instead, \`dsmigrate migrate --restart ${migration}${to}\` (what it changed stays changed). ` +
    `To back it out, \`dsmigrate migrate <the migration before it>\`.`
  );
}

/**
 * An applied migration whose dependency is not applied: a file was moved aside, or a migration was added
 * before one already applied (Django's inconsistent history). Nothing can be planned on such a history
 * until the records say which of the two is true.
 */
export function checkHistory(graph: MigrationGraph, records: ReadonlyMap<string, MigrationRecord>): void {
  for (const problem of historyProblems(graph, records)) {
    throw new DsMigrateError(
      'BAD_INPUT',
      `Inconsistent history: ${problem.migration} is applied, but its dependency ${problem.dependency} is not. If ${problem.dependency}'s changes are in the data, record it applied with \`dsmigrate migrate ${problem.dependency} --fake\`; ` +
        `otherwise record ${problem.migration} unapplied, and what it changed stays, with \`dsmigrate migrate ${problem.before} --fake\`.`,
      { migration: problem.migration, dependency: problem.dependency },
    );
  }
}

/** Each applied migration with a dependency that is not, and the target that fakes it unapplied (`zero` when it has no other). */
export function historyProblems(graph: MigrationGraph, records: ReadonlyMap<string, MigrationRecord>): { migration: string; dependency: string; before: string }[] {
  const problems: { migration: string; dependency: string; before: string }[] = [];
  for (const m of graph.ordered) {
    if (!isApplied(records.get(m.id))) continue;
    const missing = m.dependencies.find((d) => !isApplied(records.get(d)));
    if (!missing) continue;
    // Faking back to the newest applied ancestor of the missing dependency unrecords exactly what was applied after it.
    const ancestors = new Set<string>();
    const visit = (id: string): void => graph.byId.get(id)?.dependencies.forEach((d) => (ancestors.has(d) ? undefined : (ancestors.add(d), visit(d))));
    visit(missing);
    const before = graph.ordered.filter((a) => ancestors.has(a.id) && isApplied(records.get(a.id))).at(-1)?.id ?? `${m.app}:zero`;
    problems.push({ migration: m.id, dependency: missing, before });
  }
  return problems;
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
 * The steps of a migration in a direction. Going back, an operation that never took effect is left out
 * (it has nothing to undo: `ran` says which did), so a migration whose irreversible operations changed
 * nothing (failed first, or found nothing) can still be backed out; one whose irreversible operation did change data
 * is refused, before anything changes, unless the plan is only shown or faked.
 */
export function stepsFor(m: LoadedMigration, direction: Direction, record: MigrationRecord | undefined, ran: (index: number) => boolean, options: PlanOptions = {}): MigrationStep[] {
  const operations = m.definition.operations;
  if (record && record.operations.length !== operations.length) {
    throw new DsMigrateError(
      'CONFLICT',
      `${m.file} has ${operations.length} operation(s), but its record has ${record.operations.length}: the file changed while the migration was ${record.state}. ` +
        `Restart it with \`dsmigrate migrate --restart ${m.id}\` (what it already changed stays changed).`,
      { file: m.file, migration: m.id },
    );
  }
  const conflicts = options.undoConflicts ?? 'refuse';
  if (direction === 'forward') return operations.map((operation, index) => stepOf(operation, index, direction, conflicts));
  const undone = operations.map((operation, index) => ({ index, operation })).filter(({ index }) => ran(index));
  const irreversible = undone.filter(({ operation }) => !canBackOut(operation) && !operation.leavesDataOnBackOut);
  if (irreversible.length > 0 && !options.fake && !options.markIrreversible) {
    throw new DsMigrateError(
      'BAD_INPUT',
      `Cannot unapply ${m.id} (${m.file}): ${irreversible.map(({ operation }) => operation.describe()).join('; ')} ${irreversible.length === 1 ? 'is' : 'are'} irreversible. ` +
        "Declare `reverse: 'noop'` on it to back out leaving its data as it is, or record it unapplied without changing any data with `dsmigrate migrate <target> --fake`.",
      { file: m.file, migration: m.id },
    );
  }
  const steps = undone.map(({ index, operation }): MigrationStep =>
    irreversible.some((i) => i.index === index) ? { index, operation, irreversible: true } : stepOf(operation, index, direction, conflicts),
  );
  return steps.reverse();
}

/**
 * Which operations of a migration ran, going back: in effect somewhere, or with a job that changed data.
 * A job that committed no change (a delete whose first batch failed, or that found nothing) counts as never
 * run; a RunFunction that started counts as run.
 */
async function operationsThatRan(store: Datastore, namespace: string, m: LoadedMigration, record: MigrationRecord | undefined): Promise<(index: number) => boolean> {
  if (!record) return () => true;
  const ran = await Promise.all(
    record.operations.map(async (op, index) => {
      const operation = m.definition.operations[index];
      if (!op.applied.isNone) return !completedUnchanged(record, op, operation);
      if (op.job === undefined) return false;
      // A RunFunction leaves no checkpoints to say what it changed: once started, it may have changed anything.
      return isRunFunction(operation) || (await jobChangedData(store, jobRef(namespace, m.id, index, op.job.seq)));
    }),
  );
  return (index) => ran[index];
}

/**
 * A data operation with no reverse that completed everywhere and counted no change, as its record says.
 * Only there are the recorded counts all it did: with no reverse, no back-out ever ran a job of it, so it
 * had one job (`nextSeq`), whose counts the step recorded as it completed. A reversible operation's coverage
 * may be folded from earlier jobs of both directions, which the counts of its last job leave out; a faked
 * record counted nothing.
 */
function completedUnchanged(record: MigrationRecord, op: OperationRecord, operation: Operation): boolean {
  return record.state !== 'faked' && isDataOperation(operation) && !canBackOut(operation) && op.applied.isAll && op.job === undefined && op.nextSeq <= 1 && op.changed + op.deleted === 0;
}

/**
 * The graph and records as a store stands (src/migrations/graph.ts graphFor): the migrations in use, and
 * the records with each squashed migration applied through its replaced ones recorded applied in full
 * (`replacedApplied`), under its own checksum.
 */
export function inEffect(
  graph: MigrationGraph,
  records: ReadonlyMap<string, MigrationRecord>,
  originals?: ReadonlySet<string>,
): { graph: MigrationGraph; records: ReadonlyMap<string, MigrationRecord>; replacedApplied: ReadonlySet<string> } {
  const chosen = graphFor(graph, records, originals);
  if (chosen.replacedApplied.length === 0) return { graph: chosen.graph, records, replacedApplied: new Set() };
  const out = new Map(records);
  for (const id of chosen.replacedApplied) {
    const m = chosen.graph.byId.get(id)!;
    const finished = m.replaces!.map((r) => records.get(r)?.finishedAt?.getTime() ?? 0);
    const fresh = Recorder.fresh(m.id, m.app, m.name, m.checksum, m.definition.operations.map(recordedAs), 'forward');
    out.set(id, {
      ...fresh,
      state: 'applied',
      startedAt: undefined,
      host: undefined,
      finishedAt: new Date(Math.max(...finished)),
      operations: fresh.operations.map((op) => ({ ...op, applied: Coverage.all() })),
    });
  }
  return { graph: chosen.graph, records: out, replacedApplied: new Set(chosen.replacedApplied) };
}

function recordedAs(operation: Operation): { type: string; kind?: string } {
  return { type: operation.type, kind: isDataOperation(operation) ? operation.kind : undefined };
}

/** A plan from records already read. */
async function planWith(store: Datastore, loaded: MigrationGraph, namespace: string, stored: ReadonlyMap<string, MigrationRecord>, options: PlanOptions): Promise<Plan> {
  // A caller of the library passes no yargs choices: a policy it misspells is refused before anything is stored.
  if (options.undoConflicts !== undefined) checkUndoConflicts(options.undoConflicts);
  const effect = inEffect(loaded, stored);
  let { graph, records } = effect;
  if (!options.fake) checkHistory(graph, records);
  checkChecksums(graph, records, options.allowChanged);
  let { direction, migrations, target } = planRun(graph, records, options.target);
  // Backing out a squashed migration applied through its replaced ones backs those out, each with its own record.
  const through = direction === 'reverse' ? migrations.filter((m) => effect.replacedApplied.has(m.id)) : [];
  if (through.length > 0) {
    const gone = through.find((m) => m.replaces!.some((r) => !loaded.byId.has(r)));
    if (gone) {
      throw new DsMigrateError(
        'BAD_INPUT',
        `Cannot back out ${gone.id} (${gone.file}) on this store: it applied the migrations ${gone.id} replaces one by one (${gone.replaces!.join(', ')}), and their files are gone. ` +
          'Back out with the release that still has those files.',
        { file: gone.file, migration: gone.id },
      );
    }
    ({ graph, records } = inEffect(loaded, stored, new Set(through.map((m) => m.id))));
    ({ direction, migrations, target } = planRun(graph, records, options.target));
  }
  const planned: PlannedMigration[] = [];
  for (const migration of migrations) {
    const record = records.get(migration.id);
    const ran = direction === 'reverse' ? await operationsThatRan(store, namespace, migration, record) : () => true;
    planned.push({ migration, started: record !== undefined, steps: stepsFor(migration, direction, record, ran, options) });
  }
  if (!options.fake) for (const { steps } of planned) for (const step of steps) if (!step.noop && !step.irreversible) await step.operation.validate(store);
  return { direction, migrations: planned, target };
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
  return { plan: await planWith(store, graph, controlNamespace, records, options), records };
}
