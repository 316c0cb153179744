import { listKinds, type Datastore } from '../datastore';
import { DsMigrateError } from '../errors';
import { isDataOperation, type DataOperation } from '../operations';
import { describeStep, type MigrationStep, type Plan } from './planning';

/** An operation whose kind has no entity in any namespace it scans: most often a typo in the kind. */
export interface EmptyScope {
  migration: string;
  /** The step's line, as `plan` shows it. */
  description: string;
  kind: string;
  namespaces: string[];
  /** Kinds that exist in those namespaces and look alike; undefined where the backend lists no kinds. */
  similar?: string[];
}

/** Whether `operation` finds no entity of its kind in any of its namespaces. One keys-only query of one key per namespace. */
async function isEmpty(store: Datastore, operation: DataOperation): Promise<{ empty: boolean; namespaces: string[] }> {
  const namespaces = await operation.namespaces(store);
  for (const namespace of namespaces) {
    for await (const keys of store.keys({ kind: operation.kind, namespace, limit: 1 })) if (keys.length > 0) return { empty: false, namespaces };
  }
  return { empty: true, namespaces };
}

/** Kinds that differ from `kind` by case or by at most two edits (Oder for Order, person for Person). */
function alike(kind: string, candidates: readonly string[]): string[] {
  return candidates.filter((c) => c !== kind && (c.toLowerCase() === kind.toLowerCase() || editDistance(c, kind) <= 2));
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = row;
  }
  return previous[b.length];
}

/** The step's empty kind, with the kinds that look like the one meant; undefined when the kind has entities (or the step scans no kind). */
export async function emptyScopeOf(store: Datastore, migration: string, step: MigrationStep): Promise<EmptyScope | undefined> {
  const { operation } = step;
  if (step.noop || step.irreversible || !isDataOperation(operation)) return undefined;
  const { empty, namespaces } = await isEmpty(store, operation);
  if (!empty) return undefined;
  const listed = await Promise.all(namespaces.map((ns) => listKinds(store, ns)));
  const similar = listed.every((l) => l !== undefined) ? [...new Set(listed.flatMap((l) => alike(operation.kind, l!)))] : undefined;
  return { migration, description: describeStep(step), kind: operation.kind, namespaces, similar };
}

/** Every step of the plan that would scan an empty kind. */
export async function emptyScopes(store: Datastore, plan: Plan): Promise<EmptyScope[]> {
  const found: EmptyScope[] = [];
  for (const { migration, steps } of plan.migrations) {
    for (const step of steps) {
      const empty = await emptyScopeOf(store, migration.id, step);
      if (empty) found.push(empty);
    }
  }
  return found;
}

/** One line naming the step, the kind, where it looked and what exists instead. */
export function emptyScopeMessage(e: EmptyScope): string {
  const where = e.namespaces.map((n) => JSON.stringify(n)).join(', ');
  const instead = e.similar === undefined ? 'this backend does not list kinds' : e.similar.length > 0 ? `did you mean ${e.similar.join(' or ')}?` : 'no kind there looks like it';
  return `${e.migration}: ${e.description}: there is no ${e.kind} entity in namespace ${where} (${instead})`;
}

/** `--strict` (or `strict` in the config): an operation over an empty kind is bad input, refused before anything runs. */
export function refuseEmptyScopes(found: readonly EmptyScope[]): void {
  if (found.length === 0) return;
  throw new DsMigrateError(
    'BAD_INPUT',
    `${found.length} operation(s) would change nothing, their kind having no entities (--strict): ${found.map(emptyScopeMessage).join('; ')}. Fix the kind's name, or run without --strict if the kind is empty on purpose.`,
    { migration: found[0].migration, kind: found[0].kind },
  );
}
