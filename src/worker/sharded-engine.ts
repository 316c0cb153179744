import type { Datastore } from '../datastore';
import { DsMigrateError } from '../errors';
import type { MigrationOperation } from '../migrations';
import type { Operation } from '../operations';
import { clearOperationState, readOperationProgress } from '../executors';
// Not re-exported by src/executors: the plan's fingerprint must be the local executor's, so that either resumes the other's runs.
import { fingerprint } from '../executors/executor';
import { appendPage, cutFromStream, ensurePlan, loadPlan, runShardSlice, type RunPlan } from '../sharding';
import type { PlanView, ShardEngine } from './engine';

/**
 * The operation as the engine's type. Checked by shape rather than instanceof: a migration file may
 * hold another copy of the classes (a test's module registry, a second install of the package).
 */
function shardable(operation: MigrationOperation): Operation {
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

  async extendPlan(store, operation, runId, budgetMs) {
    const op = shardable(operation);
    const started = Date.now();
    let plan = await requirePlan(store, runId);
    while (plan.pending.length > 0 && Date.now() - started < budgetMs) {
      const { namespace, cursor } = plan.pending[0];
      const pages = cutFromStream(store, { kind: op.kind, namespace, filters: op.filters }, cursor);
      try {
        const page = await pages.next();
        // undefined: another process cut this page first; the reloaded plan shows what it added.
        if (!page.done) await appendPage(store, runId, namespace, cursor, page.value);
      } finally {
        await pages.return(undefined);
      }
      plan = await requirePlan(store, runId);
    }
    return viewOf(plan);
  },

  async runSlice({ store, operation, runId, shard, budgetMs, migration }) {
    const { done } = await runShardSlice({ store, work: shardable(operation), runId, index: shard, budgetMs, migration });
    return { done };
  },

  totals: (store, runId) => readOperationProgress(store, runId),

  clear: (store, runId) => clearOperationState(store, runId),
};

async function requirePlan(store: Datastore, runId: string): Promise<RunPlan> {
  const plan = await loadPlan(store, runId);
  if (!plan) throw new DsMigrateError('CONFLICT', `Operation run ${runId} lost its plan while being planned (was its state cleared?).`, { runId });
  return plan;
}
