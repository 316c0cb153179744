import { compareUtf8 } from '../datastore';
import { DsMigrateError } from '../errors';
import type { LoadedMigration } from './loader';

/** The migrations in dependency order, with lookups by id. */
export interface MigrationGraph {
  ordered: LoadedMigration[];
  byId: Map<string, LoadedMigration>;
  /** Ids that depend on each id. */
  dependents: Map<string, string[]>;
}

/**
 * Orders migrations so that each follows its dependencies; ties break by app and name so that every
 * machine applies them in the same order. Rejects unknown dependencies, cycles and two leaves in one
 * app (two people added migrations in parallel: they must say which comes first).
 */
export function buildGraph(migrations: readonly LoadedMigration[]): MigrationGraph {
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
  return { ordered, byId, dependents };
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

/** Finds a migration by `app:name`, by name alone when only one app has it, or by its number prefix. */
export function resolveTarget(graph: MigrationGraph, target: string): LoadedMigration {
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
 * unapplies everything after it that has a record; `zero` / `app:zero` unapplies an app.
 */
export function planRun(graph: MigrationGraph, records: ReadonlyMap<string, PlanningRecord>, target?: string): { direction: 'forward' | 'reverse'; migrations: LoadedMigration[] } {
  if (!target) return { direction: 'forward', migrations: graph.ordered.filter((m) => !isApplied(records.get(m.id))) };
  const zero = /^(?:(.+):)?zero$/.exec(target);
  if (zero) {
    const apps = new Set(graph.ordered.map((m) => m.app));
    const app = zero[1] ?? (apps.size === 1 ? [...apps][0] : undefined);
    if (!app || !apps.has(app)) throw new DsMigrateError('BAD_INPUT', `Unknown target "${target}": say app:zero with one of ${[...apps].join(', ')}.`, { migration: target });
    const roots = graph.ordered.filter((m) => m.app === app);
    const doomed = new Set(roots.flatMap((m) => [m.id, ...descendants(graph, m.id)]));
    return { direction: 'reverse', migrations: graph.ordered.filter((m) => doomed.has(m.id) && records.has(m.id)).reverse() };
  }
  const goal = resolveTarget(graph, target);
  if (!isApplied(records.get(goal.id))) {
    const needed = ancestors(graph, goal.id);
    return { direction: 'forward', migrations: graph.ordered.filter((m) => needed.has(m.id) && !isApplied(records.get(m.id))) };
  }
  const later = descendants(graph, goal.id);
  return { direction: 'reverse', migrations: graph.ordered.filter((m) => later.has(m.id) && records.has(m.id)).reverse() };
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
