import { existsSync } from 'node:fs';
import path from 'node:path';
import { DsMigrateError } from '../errors';
import { AddFieldData, CopyFieldData, DeleteModelData, isDataOperation, RemoveFieldData, type DataOperation, type Operation } from '../operations';
import { resolveTarget, type MigrationGraph } from './graph';
import type { LoadedMigration } from './loader';
import { migrationSource, writableProblem, type JsonValue, type WrittenOperation } from './writer';

/** One operation of a replaced migration, where it comes from. */
export interface SquashItem {
  migration: LoadedMigration;
  index: number;
  operation: Operation;
}

/** An operation left out of the squashed migration, and the later one that makes it pointless. */
export interface Dropped {
  item: SquashItem;
  by: SquashItem;
  why: string;
}

export interface SquashedMigration {
  /** Where the file goes: beside the replaced ones. */
  file: string;
  name: string;
  replaces: LoadedMigration[];
  dropped: Dropped[];
  /** Operations taken from the replaced files (they hold functions): to copy in before those files are deleted. */
  references: SquashItem[];
  source: string;
}

/**
 * The range of an app's migrations from `from` to `to` (names or numbers, as `migrate` targets are
 * given), in order. Refused, naming the migration and the fix: an unknown name, two apps, fewer than
 * two migrations, a range that is not one line of history (a migration between the two that is not
 * on the way from one to the other), one with a squashed or replaced migration in it, and one that a
 * migration outside it depends on in its middle (after squashing, that migration would need the whole
 * range, and backing out to it would back the whole range out).
 */
export function squashRange(graph: MigrationGraph, app: string, from: string, to: string): LoadedMigration[] {
  const apps = new Set([...graph.byId.values()].map((m) => m.app));
  if (!apps.has(app)) throw new DsMigrateError('BAD_INPUT', `Unknown app "${app}" (known: ${[...apps].join(', ') || 'none'}).`, { app });
  const [first, last] = [from, to].map((target) => {
    const m = resolveTarget(graph, target.includes(':') ? target : `${app}:${target}`);
    if (m.app !== app) throw new DsMigrateError('BAD_INPUT', `${m.id} is in app "${m.app}", not "${app}": a squashed migration replaces migrations of one app.`, { migration: m.id });
    if (m.replaces) throw new DsMigrateError('BAD_INPUT', `${m.id} is a squashed migration already: squash the migrations it replaces, once their files are deleted.`, { migration: m.id });
    return m;
  });
  const order = graph.ordered.filter((m) => m.app === app);
  const [start, end] = [order.indexOf(first), order.indexOf(last)];
  if (start >= end) {
    throw new DsMigrateError('BAD_INPUT', `${first.id} ${start === end ? 'is' : 'comes after'} ${last.id}: give the first and the last of two or more migrations to squash, in that order.`, {
      migration: first.id,
    });
  }
  const range = order.slice(start, end + 1);
  const after = descendants(graph, first.id);
  const before = ancestors(graph, last.id);
  for (const m of range) {
    if (m.replaces) throw new DsMigrateError('BAD_INPUT', `${m.id} (${m.file}) is a squashed migration already: squash a range without it.`, { migration: m.id });
    if ((m !== first && !after.has(m.id)) || (m !== last && !before.has(m.id))) {
      throw new DsMigrateError(
        'BAD_INPUT',
        `The range ${first.id}..${last.id} is not one line of history: ${m.id} (${m.file}) is between them but ${m !== first && !after.has(m.id) ? `does not depend on ${first.id}` : `${last.id} does not depend on it`}. ` +
          'Squash a range in which each migration depends on the one before it.',
        { migration: m.id },
      );
    }
  }
  const inRange = new Set(range.map((m) => m.id));
  for (const m of graph.ordered) {
    if (inRange.has(m.id)) continue;
    const middle = m.dependencies.find((d) => inRange.has(d) && d !== last.id);
    if (middle) {
      throw new DsMigrateError(
        'BAD_INPUT',
        `${m.id} (${m.file}) depends on ${middle}, in the middle of the range ${first.id}..${last.id}. Squash up to ${middle} or from after it, or make ${m.id} depend on ${last.id} instead.`,
        { migration: m.id, dependency: middle },
      );
    }
  }
  return range;
}

/**
 * Concatenates the operations in order, leaving out each one that the very next one (once others are
 * left out) makes pointless on the data, backing out included. Two rules:
 * - AddFieldData(k, f) then RemoveFieldData(k, f) over the same scope, the remove declaring no default to
 *   re-add: the remove deletes f wherever the add wrote it, so it alone leaves the same data, and backing
 *   out either leaves f absent.
 * - AddFieldData, RemoveFieldData or CopyFieldData on k then DeleteModelData(k) of every entity in their
 *   namespaces, the delete irreversible: the delete removes the entities those changed, and backing out
 *   is refused at the delete either way.
 * An operation that holds a function (it may do anything) is never left out.
 */
export function foldOperations(items: readonly SquashItem[]): { kept: SquashItem[]; dropped: Dropped[] } {
  const kept: SquashItem[] = [];
  const dropped: Dropped[] = [];
  for (const item of items) {
    for (let top = kept.at(-1); top; top = kept.at(-1)) {
      const why = pointlessBefore(top.operation, item.operation);
      if (!why) break;
      kept.pop();
      dropped.push({ item: top, by: item, why });
    }
    kept.push(item);
  }
  return { kept, dropped };
}

function pointlessBefore(earlier: Operation, later: Operation): string | undefined {
  if (!isDataOperation(earlier) || !isDataOperation(later) || writableProblem(earlier) || earlier.kind !== later.kind) return undefined;
  if (earlier instanceof AddFieldData && later instanceof RemoveFieldData && earlier.name === later.name && !later.reversible && sameScope(earlier, later)) {
    return `${later.describe()} deletes the field wherever it was written`;
  }
  const fieldData = earlier instanceof AddFieldData || earlier instanceof RemoveFieldData || earlier instanceof CopyFieldData;
  if (fieldData && later instanceof DeleteModelData && !later.leavesDataOnBackOut && later.filters.length === 0 && covers(later, earlier)) {
    return `${later.describe()} deletes the entities it changed`;
  }
  return undefined;
}

function sameScope(a: DataOperation, b: DataOperation): boolean {
  return covers(a, b) && covers(b, a) && JSON.stringify(a.toJSON().filter) === JSON.stringify(b.toJSON().filter);
}

/** Scans every namespace the other scans. */
function covers(wide: DataOperation, narrow: DataOperation): boolean {
  const [w, n] = [wide.scope.namespaces, narrow.scope.namespaces];
  if (w === '*') return true;
  return n !== '*' && n.every((ns) => w.includes(ns));
}

/**
 * The file that replaces the range (Django's squashmigrations): beside the replaced files, numbered as the
 * first of them, depending on what the range depends on outside it, listing the replaced ones in
 * `replaces`, with the models' state of the last one that records it (dsmigrate makemigrations). Its
 * header says what was left out and why, and which operations are taken from the replaced files.
 */
export function squashMigrations(graph: MigrationGraph, app: string, from: string, to: string, name?: string): SquashedMigration {
  const range = squashRange(graph, app, from, to);
  const [first, last] = [range[0], range.at(-1)!];
  if (name !== undefined && !/^[A-Za-z0-9_-]+$/.test(name))
    throw new DsMigrateError('BAD_INPUT', `--name "${name}" must be letters, digits, _ or - (it becomes part of the file name).`, { field: '--name' });
  const fileName = `${first.name.slice(0, 4)}_${name ?? `squashed_${last.name}`}`;
  const dir = path.dirname(first.file);
  const file = path.join(dir, `${fileName}.ts`);
  if (existsSync(file) || graph.byId.has(`${app}:${fileName}`)) {
    throw new DsMigrateError('BAD_INPUT', `${file} (or a migration named ${fileName}) exists already: choose another name with --name.`, { file });
  }

  const { kept, dropped } = foldOperations(range.flatMap((migration) => migration.definition.operations.map((operation, index) => ({ migration, index, operation }))));
  const inRange = new Set(range.map((m) => m.id));
  const dependencies = [...new Set(range.flatMap((m) => m.dependencies).filter((d) => !inRange.has(d)))].map((id) => (id.startsWith(`${app}:`) ? id.slice(app.length + 1) : id));
  const references: SquashItem[] = [];
  let previous: LoadedMigration | undefined;
  const operations = kept.map((item): WrittenOperation => {
    const comment = item.migration === previous ? [] : [`From ${item.migration.name}.`];
    previous = item.migration;
    if (!writableProblem(item.operation)) return { operation: item.operation, comment };
    references.push(item);
    const relative = path.relative(dir, item.migration.file).split(path.sep).join('/');
    return { reference: { file: relative, index: item.index }, comment: [...comment, `${item.operation.describe()}: holds a function, so it is taken from ${item.migration.name}.`] };
  });
  const state = [...range].reverse().find((m) => m.definition.state !== undefined)?.definition.state;
  const source = migrationSource({
    header: header(range, dropped, references),
    dependencies,
    replaces: range.map((m) => m.name),
    operations,
    ...(state !== undefined ? { state: state as unknown as JsonValue } : {}),
  });
  return { file, name: fileName, replaces: range, dropped, references, source };
}

function header(range: readonly LoadedMigration[], dropped: readonly Dropped[], references: readonly SquashItem[]): string[] {
  const where = (item: SquashItem) => `${item.migration.name} operation ${item.index + 1} (${item.operation.describe()})`;
  const lines = [
    `Squashed by \`dsmigrate squash\` from ${range.length} migrations, ${range[0].name} to ${range.at(-1)!.name} (docs/squashing.md).`,
    'A store that applied all of them counts this one as applied; one that applied none runs this one; one that applied some runs the rest of them.',
    'Release it beside the replaced files; once every store has run past them, delete those files and keep `replaces`.',
  ];
  if (references.length > 0) {
    lines.push('', 'Taken from the replaced files, as they hold functions: copy them (with what they import) into this file before deleting those files:');
    for (const item of references) lines.push(`- ${where(item)}`);
  }
  if (dropped.length > 0) {
    lines.push('', 'Left out, as a later operation makes them pointless:');
    for (const d of dropped) lines.push(`- ${where(d.item)}: ${d.why} (${d.by.migration.name} operation ${d.by.index + 1}).`);
  }
  return lines;
}

function ancestors(graph: MigrationGraph, id: string): Set<string> {
  const out = new Set<string>();
  const visit = (x: string): void => graph.byId.get(x)?.dependencies.forEach((d) => (out.has(d) ? undefined : (out.add(d), visit(d))));
  visit(id);
  return out;
}

function descendants(graph: MigrationGraph, id: string): Set<string> {
  const out = new Set<string>();
  const visit = (x: string): void => graph.dependents.get(x)?.forEach((d) => (out.has(d) ? undefined : (out.add(d), visit(d))));
  visit(id);
  return out;
}
