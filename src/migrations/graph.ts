import { compareUtf8 } from '../datastore';
import { DsMigrateError } from '../errors';
import type { LoadedMigration } from './loader';

/** The migrations in dependency order, with lookups by id. */
export interface MigrationGraph {
  /** The migrations in use: of a squashed migration and the ones it replaces, either it or they (`originals`). */
  ordered: LoadedMigration[];
  /** Every loaded migration, those left out of `ordered` too, so that a process can find any migration a run names. */
  byId: Map<string, LoadedMigration>;
  /** Ids that depend on each id. */
  dependents: Map<string, string[]>;
  /** Each squashed migration and the ids it replaces, whether their files are still there or deleted. */
  replacements?: ReadonlyMap<string, readonly string[]>;
  /** The squashed migrations whose replaced ones are in use instead (for a store that applied only some of them). */
  originals?: ReadonlySet<string>;
  /** The migrations as loaded, to choose again between squashed migrations and their replaced ones (`buildGraph`). */
  loaded?: readonly LoadedMigration[];
}

/**
 * Orders migrations so that each follows its dependencies; ties break by app and name so that every
 * machine applies them in the same order. Rejects unknown dependencies, cycles and two leaves in one
 * app (two people added migrations in parallel: they must say which comes first).
 *
 * Of a squashed migration and the migrations it replaces, one side is in use, as Django's loader does:
 * the squashed one, unless it is in `originals`. A dependency on a migration out of use is pointed at
 * the one in its place: a replaced one's at the squashed one, a squashed one's at the last it replaces.
 */
export function buildGraph(loaded: readonly LoadedMigration[], originals: ReadonlySet<string> = new Set()): MigrationGraph {
  const replacements = new Map(loaded.filter((m) => m.replaces).map((m) => [m.id, m.replaces!]));
  const migrations = inUse(loaded, replacements, originals);
  const byId = new Map(migrations.map((m) => [m.id, m]));
  const dependents = new Map<string, string[]>(migrations.map((m) => [m.id, []]));
  for (const m of migrations) {
    for (const dep of m.dependencies) {
      if (!byId.has(dep)) {
        throw new DsMigrateError('MIGRATION_LOAD', `${m.file} depends on unknown migration "${dep}".`, { file: m.file, migration: m.id });
      }
      dependents.get(dep)!.push(m.id);
    }
  }
  checkLeaves(migrations, dependents);

  const order = (a: LoadedMigration, b: LoadedMigration) => compareUtf8(a.app, b.app) || compareUtf8(a.name, b.name);
  const remaining = new Map(migrations.map((m) => [m.id, m.dependencies.length]));
  const ready = migrations.filter((m) => m.dependencies.length === 0).sort(order);
  const ordered: LoadedMigration[] = [];
  while (ready.length > 0) {
    const next = ready.shift()!;
    ordered.push(next);
    for (const id of dependents.get(next.id)!) {
      const left = remaining.get(id)! - 1;
      remaining.set(id, left);
      if (left === 0) {
        ready.push(byId.get(id)!);
        ready.sort(order);
      }
    }
  }
  if (ordered.length < migrations.length) {
    const cycle = findCycle(
      migrations.filter((m) => remaining.get(m.id)! > 0),
      byId,
    );
    throw new DsMigrateError('MIGRATION_LOAD', `Migrations depend on each other in a cycle: ${cycle.map((m) => m.id).join(' -> ')} (files: ${cycle.map((m) => m.file).join(', ')}).`, {
      file: cycle[0].file,
      migration: cycle[0].id,
    });
  }
  return { ordered, byId: new Map([...loaded.map((m): [string, LoadedMigration] => [m.id, m]), ...byId]), dependents, replacements, originals, loaded };
}

/** The migrations in use, their dependencies pointed at migrations in use. */
function inUse(loaded: readonly LoadedMigration[], replacements: ReadonlyMap<string, readonly string[]>, originals: ReadonlySet<string>): LoadedMigration[] {
  const byId = new Map(loaded.map((m) => [m.id, m]));
  const replacedBy = new Map<string, string>();
  for (const [squashed, ids] of replacements) {
    const m = byId.get(squashed)!;
    for (const id of ids) {
      const other = replacedBy.get(id);
      if (other) throw new DsMigrateError('MIGRATION_LOAD', `${m.file} and ${byId.get(other)!.file} both replace ${id}: keep one of the two squashed migrations.`, { file: m.file, migration: m.id });
      if (replacements.has(id)) {
        throw new DsMigrateError('MIGRATION_LOAD', `${m.file} replaces ${id}, which replaces other migrations itself: squash the original migrations instead.`, { file: m.file, migration: m.id });
      }
      if (m.dependencies.includes(id)) throw new DsMigrateError('MIGRATION_LOAD', `${m.file} depends on ${id}, which it replaces: remove it from its dependencies.`, { file: m.file, migration: m.id });
      replacedBy.set(id, squashed);
    }
  }
  const inPlaceOf = (id: string): string => {
    const squashed = replacedBy.get(id);
    if (squashed && !originals.has(squashed)) return squashed;
    if (originals.has(id)) return replacements.get(id)!.at(-1)!;
    return id;
  };
  const out: LoadedMigration[] = [];
  for (const m of loaded) {
    const squashed = replacedBy.get(m.id);
    if ((squashed && !originals.has(squashed)) || originals.has(m.id)) continue;
    const dependencies = [...new Set(m.dependencies.map(inPlaceOf))].filter((d) => d !== m.id);
    out.push(dependencies.every((d, i) => d === m.dependencies[i]) && dependencies.length === m.dependencies.length ? m : { ...m, dependencies });
  }
  return out;
}

function checkLeaves(migrations: readonly LoadedMigration[], dependents: Map<string, string[]>): void {
  const leavesByApp = new Map<string, LoadedMigration[]>();
  for (const m of migrations) {
    const sameAppDependents = dependents.get(m.id)!.filter((id) => id.startsWith(`${m.app}:`));
    if (sameAppDependents.length === 0) leavesByApp.set(m.app, [...(leavesByApp.get(m.app) ?? []), m]);
  }
  for (const [app, leaves] of leavesByApp) {
    if (leaves.length > 1) {
      throw new DsMigrateError(
        'MIGRATION_LOAD',
        `App "${app}" has ${leaves.length} latest migrations that do not depend on each other (${leaves.map((l) => l.file).join(', ')}): add a dependency between them.`,
        { file: leaves[0].file, migration: leaves[0].id },
      );
    }
  }
}

function findCycle(stuck: readonly LoadedMigration[], byId: Map<string, LoadedMigration>): LoadedMigration[] {
  const stuckIds = new Set(stuck.map((m) => m.id));
  const path: LoadedMigration[] = [];
  const onPath = new Set<string>();
  let current = stuck[0];
  while (!onPath.has(current.id)) {
    path.push(current);
    onPath.add(current.id);
    current = byId.get(current.dependencies.find((d) => stuckIds.has(d))!)!;
  }
  const start = path.findIndex((m) => m.id === current.id);
  return [...path.slice(start), current];
}

/**
 * The graph for a store, from its records, as Django's loader chooses: a squashed migration is in use
 * where the store recorded it, or recorded none or all of the migrations it replaces (`replacedApplied`
 * lists those of the latter that count as applied through them); where it recorded only some, the
 * replaced ones are in use, so that the store runs the rest of them. `originals` asks for the replaced
 * ones wherever they are all applied and all still have their files (a back-out through them).
 */
export function graphFor(graph: MigrationGraph, records: ReadonlyMap<string, PlanningRecord>, originals: ReadonlySet<string> = new Set()): { graph: MigrationGraph; replacedApplied: string[] } {
  const useOriginals = new Set<string>();
  const replacedApplied: string[] = [];
  for (const [id, replaced] of graph.replacements ?? []) {
    const recorded = replaced.filter((r) => records.has(r));
    if (records.has(id) || recorded.length === 0) continue;
    const allApplied = replaced.every((r) => isApplied(records.get(r)));
    const gone = replaced.filter((r) => !graph.byId.has(r));
    if (allApplied && !(originals.has(id) && gone.length === 0)) {
      replacedApplied.push(id);
      continue;
    }
    if (gone.length > 0) {
      const m = graph.byId.get(id)!;
      throw new DsMigrateError(
        'MIGRATION_LOAD',
        `${m.file} replaces ${replaced.join(', ')}; this store applied only ${recorded.filter((r) => isApplied(records.get(r))).join(', ') || 'none'} of them, and the files of ${gone.join(', ')} are gone. ` +
          'Run `dsmigrate migrate` with the release that still has the replaced files first, then upgrade.',
        { file: m.file, migration: id },
      );
    }
    useOriginals.add(id);
  }
  const same = useOriginals.size === (graph.originals?.size ?? 0) && [...useOriginals].every((id) => graph.originals?.has(id));
  return { graph: same || !graph.loaded ? graph : buildGraph(graph.loaded, useOriginals), replacedApplied };
}

/** A migration's record as far as planning needs it: whether it is in effect. */
export interface PlanningRecord {
  state: 'running' | 'applied' | 'failed' | 'faked';
}

const APPLIED = new Set(['applied', 'faked']);

export function isApplied(record: PlanningRecord | undefined): boolean {
  return record !== undefined && APPLIED.has(record.state);
}

/**
 * Finds a migration by its id, in a process that did not plan the run (a Cloud Tasks worker): the
 * migrations of its files, or migrations rebuilt from what is stored (runtime models' schema
 * migrations, src/dynamic). Undefined: this resolver does not know the id.
 */
export type MigrationResolver = (id: string) => Promise<LoadedMigration | undefined>;

/** Resolves from the graph, then from each of `others` in turn: the first that knows the id wins. */
export function resolverOf(graph: MigrationGraph, ...others: readonly MigrationResolver[]): MigrationResolver {
  return async (id) => {
    const own = graph.byId.get(id);
    if (own) return own;
    for (const other of others) {
      const found = await other(id);
      if (found) return found;
    }
    return undefined;
  };
}

/**
 * Finds a migration by `app:name`, by name alone when only one app has it, or by its number prefix.
 * A replaced migration out of use stands for the squashed migration in its place.
 */
export function resolveTarget(graph: MigrationGraph, target: string): LoadedMigration {
  const found = findTarget(graph, target);
  const squashed = [...(graph.replacements ?? [])].find(([id, ids]) => ids.includes(found.id) && !graph.originals?.has(id));
  return squashed ? graph.byId.get(squashed[0])! : found;
}

function findTarget(graph: MigrationGraph, target: string): LoadedMigration {
  const exact = graph.byId.get(target);
  if (exact) return exact;
  const matches = graph.ordered.filter((m) => m.name === target || m.name.startsWith(`${target}_`) || `${m.app}:${m.name}`.startsWith(`${target}_`));
  if (matches.length === 1) return matches[0];
  const why = matches.length === 0 ? `no migration matches it (known: ${graph.ordered.map((m) => m.id).join(', ') || 'none'})` : `it matches ${matches.map((m) => m.id).join(', ')}; use app:name`;
  throw new DsMigrateError('BAD_INPUT', `Unknown target "${target}": ${why}.`, { migration: target });
}

/**
 * The migrations to apply (forward, in graph order) or unapply (reverse, newest first) to reach the
 * target: none means every pending one; an unapplied target brings in what it needs; an applied one
 * unapplies everything after it that has a record; `zero` / `app:zero` unapplies an app. A run to a target
 * also names it as `app:name` or `app:zero`, which stays unambiguous whatever files are added later.
 */
export function planRun(graph: MigrationGraph, records: ReadonlyMap<string, PlanningRecord>, target?: string): { direction: 'forward' | 'reverse'; migrations: LoadedMigration[]; target?: string } {
  if (!target) return { direction: 'forward', migrations: graph.ordered.filter((m) => !isApplied(records.get(m.id))) };
  const zero = /^(?:(.+):)?zero$/.exec(target);
  if (zero) {
    const apps = new Set(graph.ordered.map((m) => m.app));
    const app = zero[1] ?? (apps.size === 1 ? [...apps][0] : undefined);
    if (!app || !apps.has(app)) throw new DsMigrateError('BAD_INPUT', `Unknown target "${target}": say app:zero with one of ${[...apps].join(', ')}.`, { migration: target });
    const roots = graph.ordered.filter((m) => m.app === app);
    const doomed = new Set(roots.flatMap((m) => [m.id, ...descendants(graph, m.id)]));
    return { direction: 'reverse', migrations: graph.ordered.filter((m) => doomed.has(m.id) && records.has(m.id)).reverse(), target: `${app}:zero` };
  }
  const goal = resolveTarget(graph, target);
  if (!isApplied(records.get(goal.id))) {
    const needed = ancestors(graph, goal.id);
    return { direction: 'forward', migrations: graph.ordered.filter((m) => needed.has(m.id) && !isApplied(records.get(m.id))), target: goal.id };
  }
  const later = descendants(graph, goal.id);
  return { direction: 'reverse', migrations: graph.ordered.filter((m) => later.has(m.id) && records.has(m.id)).reverse(), target: goal.id };
}

function ancestors(graph: MigrationGraph, id: string): Set<string> {
  const out = new Set<string>();
  const visit = (x: string): void => {
    if (out.has(x)) return;
    out.add(x);
    graph.byId.get(x)!.dependencies.forEach(visit);
  };
  visit(id);
  return out;
}

function descendants(graph: MigrationGraph, id: string): Set<string> {
  const out = new Set<string>();
  const visit = (x: string): void => {
    for (const d of graph.dependents.get(x)!) {
      if (out.has(d)) continue;
      out.add(d);
      visit(d);
    }
  };
  visit(id);
  return out;
}
