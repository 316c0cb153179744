import type { Datastore } from '../datastore';
import { DsMigrateError } from '../errors';
import type { Operation } from '../operations';
// The plan's fingerprint is the local executor's, so that either resumes the other's runs.
import { clearOperationState, fingerprint } from '../executors';
import { appendPage, cutFromStream, ensurePlan, formatWarnings, loadPlan, loadShardStates, runShardSlice, summarize, type RunPlan } from '../sharding';
import type { PlanView, ShardEngine } from './engine';
import { clearManifests, loadManifest, saveManifests } from './key-manifest';

/**
 * The operation as the engine's type. Checked by shape rather than instanceof: a migration file may
 * hold another copy of the classes (a test's module registry, a second install of the package).
 */
function shardable(operation: Operation): Operation {
  const candidate = operation as Partial<Operation>;
  const fits = typeof candidate.apply === 'function' && typeof candidate.relatedKeys === 'function' && typeof candidate.namespaces === 'function' && typeof candidate.scope === 'object';
  if (!fits) {
    throw new DsMigrateError('BAD_INPUT', `${operation.type} on ${operation.kind} is not one of the data operations the shard engine runs.`, { operation: operation.type, kind: operation.kind });
  }
  return candidate as Operation;
}

const viewOf = (plan: RunPlan): PlanView => ({ shards: plan.shards.length, pending: plan.pending.length > 0 });

/** The pipeline's engine: src/sharding's planner, slice runner and progress, driven by ids. */
export const shardedEngine: ShardEngine = {
  async ensurePlan(store, operation, runId) {
    const op = shardable(operation);
    return viewOf(
      await ensurePlan({
        store,
        runId,
        type: op.type,
        kind: op.kind,
        operation: fingerprint(op),
        namespaces: () => op.namespaces(store),
        filters: op.filters,
        shardCount: op.scope.shardCount,
      }),
    );
  },

  async extendPlan(store, operation, runId) {
    const op = shardable(operation);
    const plan = await requirePlan(store, runId);
    const next = plan.pending[0];
    if (!next) return viewOf(plan);
    const pages = cutFromStream(store, { kind: op.kind, namespace: next.namespace, filters: op.filters }, next.cursor);
    try {
      const page = await pages.next();
      // undefined: another process cut this page first; the reloaded plan shows what it added.
      const indexes = page.done ? undefined : await appendPage(store, runId, next.namespace, next.cursor, page.value);
      if (indexes && !page.done) await saveManifests(store, plan, indexes.map((index, i) => ({ index, ...page.value.shards[i] })));
    } finally {
      await pages.return(undefined);
    }
    return viewOf(await requirePlan(store, runId));
  },

  async runSlice({ store, operation, runId, shard, budgetMs, migration }) {
    const plan = await requirePlan(store, runId);
    const prefetched = await loadManifest(store, plan, shard);
    const { done } = await runShardSlice({ store, work: shardable(operation), runId, index: shard, budgetMs, migration, prefetched });
    return { done };
  },

  async totals(store, runId) {
    const plan = await loadPlan(store, runId);
    if (!plan) return undefined;
    const states = await loadShardStates(store, plan);
    const { warnings, ...progress } = summarize(plan, states);
    return { ...progress, warnings: formatWarnings(warnings), complete: plan.pending.length === 0 && states.every((s) => s.done) };
  },

  finish: (store, runId) => clearManifests(store, runId),

  async clear(store, runId) {
    await clearManifests(store, runId);
    await clearOperationState(store, runId);
  },
};

async function requirePlan(store: Datastore, runId: string): Promise<RunPlan> {
  const plan = await loadPlan(store, runId);
  if (!plan) throw new DsMigrateError('CONFLICT', `Operation run ${runId} lost its plan while being planned (was its state cleared?).`, { runId });
  return plan;
}
