import pLimit from 'p-limit';
import type { Datastore, Entity, Key } from '../datastore';
import { DsMigrateError } from '../errors';
import { emptyScopeMessage, emptyScopeOf, inEffect, isApplied, Recorder, resolveTarget, type LoadedMigration, type MigrationGraph, type OperationResult, type RunEvent } from '../migrations';
import { isDataOperation, RestoreBeforeImages, restoresBeforeImages, type DataOperation, type Operation } from '../operations';
import { matchesFilters, pushedDown, splitNamespace, type KeyRange } from '../sharding';
import { DEFAULT_CONCURRENCY } from './local';

/** Offending keys kept per operation, as examples. */
const SAMPLES = 10;
/** Keys looked up at once (Datastore's limit is 1,000 with the related keys). */
const BATCH = 300;

export interface VerifyProblem {
  key: string;
  problem: string;
}

export interface OperationVerdict {
  migration: string;
  operation: number;
  description: string;
  /** False when the operation cannot say what must hold (a map function without `verify`). */
  verifiable: boolean;
  scanned: number;
  failed: number;
  samples: VerifyProblem[];
  /** Its kind has no entities (src/migrations/empty-scopes.ts): it checked nothing, most often because of a typo. */
  emptyKind?: string;
}

export interface VerifyReport {
  ok: boolean;
  verdicts: OperationVerdict[];
}

export interface VerifyOptions {
  store: Datastore;
  graph: MigrationGraph;
  controlNamespace?: string;
  /** One migration (name, number or app:name); every applied one otherwise. */
  target?: string;
  concurrency?: number;
  onEvent?: (event: RunEvent) => void;
}

/**
 * `dsmigrate verify`: re-scans what applied migrations touched and checks each operation's postcondition
 * (src/operations: `postcondition`) on every entity, as the data is now. This catches entities that old
 * code wrote while a migration ran (an entity saved without the field AddFieldData added). Read-only,
 * sharded like the operations. A later migration that undoes an earlier one (removes a field it added)
 * makes the earlier one fail: verify that one alone, by name.
 */
export async function verifyMigrations(options: VerifyOptions): Promise<VerifyReport> {
  const { store } = options;
  const emit = options.onEvent ?? (() => undefined);
  // A squashed migration is verified wherever it is in effect, applied itself or through the ones it replaces.
  const { graph, records } = inEffect(options.graph, await new Recorder(store, options.controlNamespace ?? '').list());
  let migrations = graph.ordered.filter((m) => records.get(m.id)?.state === 'applied');
  if (options.target) {
    const m = resolveTarget(graph, options.target);
    const state = records.get(m.id)?.state;
    // Backed out from its before-images: what must hold is that every restored entity is as its image kept it.
    if (state === undefined && m.definition.operations.some(restoresBeforeImages)) return verifyRestored(store, m, options);
    if (state !== 'applied') {
      throw new DsMigrateError('BAD_INPUT', `${m.id} is ${state ?? 'pending'}, not applied: there is nothing to verify${isApplied(records.get(m.id)) ? ' (a faked migration changed no data)' : ''}.`, {
        migration: m.id,
      });
    }
    migrations = [m];
  }
  emit({ type: 'plan', direction: 'forward', migrations: migrations.map((m) => m.id), purpose: 'verify' });
  const verdicts: OperationVerdict[] = [];
  for (const [index, m] of migrations.entries()) {
    emit({ type: 'migration-start', migration: m.id, index, total: migrations.length, resumed: false });
    const operations = m.definition.operations;
    for (const [i, operation] of operations.entries()) {
      const description = operation.describe();
      emit({ type: 'operation-start', migration: m.id, operation: i, operations: operations.length, description });
      const verdict = await verifyOperation(store, operation, {
        concurrency: options.concurrency,
        onProgress: (scanned, failed, shards) => emit({ type: 'progress', migration: m.id, operation: i, progress: progressOf(scanned, failed, shards) }),
      });
      const empty = verdict.scanned === 0 ? await emptyScopeOf(store, m.id, { index: i, operation }) : undefined;
      verdicts.push({ migration: m.id, operation: i, description, ...verdict, ...(empty ? { emptyKind: emptyScopeMessage(empty) } : {}) });
      const result: OperationResult = { ...progressOf(verdict.scanned, verdict.failed, { done: 1, total: 1 }), warnings: verdict.samples.map((s) => `${s.key} ${s.problem}`) };
      emit({ type: 'operation-done', migration: m.id, operation: i, result });
    }
  }
  return { ok: verdicts.every((v) => v.failed === 0), verdicts };
}

/** `verify` of a migration backed out from before-images: each such operation's restored entities against their images. */
async function verifyRestored(store: Datastore, m: LoadedMigration, options: VerifyOptions): Promise<VerifyReport> {
  const emit = options.onEvent ?? (() => undefined);
  emit({ type: 'plan', direction: 'reverse', migrations: [m.id], purpose: 'verify' });
  emit({ type: 'migration-start', migration: m.id, index: 0, total: 1, resumed: false });
  const verdicts: OperationVerdict[] = [];
  const operations = m.definition.operations;
  for (const [i, operation] of operations.entries()) {
    if (!isDataOperation(operation) || !restoresBeforeImages(operation)) continue;
    const restore = new RestoreBeforeImages(operation, i, 'refuse', m.id);
    const description = restore.describe();
    emit({ type: 'operation-start', migration: m.id, operation: i, operations: operations.length, description });
    const verdict = await verifyOperation(store, restore, { concurrency: options.concurrency });
    verdicts.push({ migration: m.id, operation: i, description, ...verdict });
    emit({
      type: 'operation-done',
      migration: m.id,
      operation: i,
      result: { ...progressOf(verdict.scanned, verdict.failed, { done: 1, total: 1 }), warnings: verdict.samples.map((s) => `${s.key} ${s.problem}`) },
    });
  }
  return { ok: verdicts.every((v) => v.failed === 0), verdicts };
}

function progressOf(scanned: number, failed: number, shards: { done: number; total: number }): OperationResult {
  return { scanned, changed: 0, deleted: 0, skipped: 0, failed, shardsDone: shards.done, shardsTotal: shards.total, warnings: [] };
}

/** Checks one operation's postcondition on every entity in its scope, a few key ranges at a time. */
export async function verifyOperation(
  store: Datastore,
  operation: Operation,
  options: { concurrency?: number; onProgress?: (scanned: number, failed: number, shards: { done: number; total: number }) => void } = {},
): Promise<Omit<OperationVerdict, 'migration' | 'operation' | 'description'>> {
  // A RunFunction leaves nothing to scan: it cannot say what must hold.
  if (!isDataOperation(operation) || !operation.postcondition) return { verifiable: false, scanned: 0, failed: 0, samples: [] };
  const ranges: KeyRange[] = [];
  for (const namespace of await operation.namespaces(store)) {
    const target = { kind: operation.kind, namespace, filters: operation.filters };
    ranges.push(...((await splitNamespace(store, target)) ?? [{ namespace }]));
  }
  const tally = { scanned: 0, failed: 0, done: 0, samples: [] as VerifyProblem[] };
  const limit = pLimit(options.concurrency ?? DEFAULT_CONCURRENCY);
  await Promise.all(
    ranges.map((range) =>
      limit(async () => {
        for await (const keys of store.keys({ kind: operation.kind, namespace: range.namespace, filters: pushedDown(operation.filters), from: range.start, before: range.end, orderByKey: true })) {
          for (let i = 0; i < keys.length; i += BATCH) await checkBatch(store, operation, keys.slice(i, i + BATCH), tally);
          options.onProgress?.(tally.scanned, tally.failed, { done: tally.done, total: ranges.length });
        }
        tally.done++;
      }),
    ),
  );
  return { verifiable: true, scanned: tally.scanned, failed: tally.failed, samples: tally.samples };
}

async function checkBatch(store: Datastore, operation: DataOperation, keys: readonly Key[], tally: { scanned: number; failed: number; samples: VerifyProblem[] }): Promise<void> {
  const related = keys.map((k) => operation.relatedKeys(k).slice(0, 1));
  const found = await store.lookup([...keys, ...related.flat()]);
  const byKey = new Map<string, Entity>();
  for (const entity of found) if (entity) byKey.set(entity.key.toString(), entity);
  for (const [i, key] of keys.entries()) {
    const entity = byKey.get(key.toString());
    if (!entity || !matchesFilters(entity, operation.filters)) continue;
    tally.scanned++;
    const problem = operation.postcondition!(
      entity,
      related[i].map((k) => byKey.get(k.toString())),
    );
    if (problem === undefined) continue;
    tally.failed++;
    if (tally.samples.length < SAMPLES) tally.samples.push({ key: key.toString(), problem });
  }
}
