import type { JobRef } from '../../control';
import type { Datastore } from '../../datastore';
import { operationOf, type OperationProgress } from '../../migrations';
import type { Operation } from '../../operations';
import { rampQuestion } from '../local';
import {
  appendPage,
  clearJobState,
  cutFromStream,
  ensurePlan,
  formatWarnings,
  loadManifest,
  loadPlan,
  loadShardStates,
  RateLimiter,
  requirePlan,
  runShardSlice,
  saveManifests,
  planRate,
  sliceShare,
  summarize,
  type JobPlan,
  type KeyRange,
  type RateOption,
} from '../../sharding';

/** What the pipeline needs of the sharded engine (src/sharding), all of it from ids and the operation. */
export interface PlanView {
  /** Shards in the stored plan so far, numbered 0..shards-1. */
  shards: number;
  /** Namespaces still to be cut into shards from their key streams. */
  pending: boolean;
}

export interface OperationTotals extends OperationProgress {
  warnings: string[];
  /** Every shard planned (no key stream left to cut) and finished. */
  complete: boolean;
}

export interface ShardEngine {
  /** The job's stored plan, made now if it has none (the first to store one wins); `rate` is the step's, whose ramp a new plan decides. */
  ensurePlan(store: Datastore, operation: Operation, job: JobRef, bounds?: readonly KeyRange[], rate?: RateOption): Promise<PlanView>;
  /** Cuts the next page of shards from a pending key stream. */
  extendPlan(store: Datastore, operation: Operation, job: JobRef): Promise<PlanView>;
  /** One time-boxed slice of one shard, from its checkpoint; `done` once the shard has finished. */
  /** `rate` is the step's, over all its slices: a slice writes at its share of it. */
  runSlice(request: { store: Datastore; operation: Operation; job: JobRef; shard: number; budgetMs: number; migration: string; rate?: RateOption }): Promise<{ done: boolean }>;
  /** Counts summed over the shards' checkpoints; undefined before the job has a plan. */
  totals(store: Datastore, job: JobRef): Promise<OperationTotals | undefined>;
  /** Forgets the job's plan and checkpoints. */
  clear(store: Datastore, job: JobRef): Promise<void>;
}

const viewOf = (plan: JobPlan): PlanView => ({ shards: plan.shards.length, pending: plan.pending.length > 0 });

/**
 * The pipeline's engine: src/sharding's planner, slice runner and progress, driven by ids. Shards cut
 * from a key stream keep their keys in a manifest, so that a slice in another process reads exactly the
 * keys the local executor would, by lookup, rather than scanning its range again.
 */
export const shardedEngine: ShardEngine = {
  async ensurePlan(store, operation, job, bounds, rate) {
    const op = operationOf({ job, operation });
    return viewOf(
      await ensurePlan({
        store,
        job,
        bounds,
        type: op.type,
        kind: op.kind,
        operation: op.fingerprint(),
        namespaces: () => op.namespaces(store),
        filters: op.filters,
        shardCount: op.scope.shardCount,
        rampsByDefault: rampQuestion(op, store, rate),
      }),
    );
  },

  async extendPlan(store, operation, job) {
    const op = operationOf({ job, operation });
    const plan = await requirePlan(store, job);
    const next = plan.pending[0];
    if (!next) return viewOf(plan);
    const pages = cutFromStream(store, { kind: op.kind, namespace: next.namespace, filters: op.filters }, next.cursor);
    try {
      const page = await pages.next();
      // undefined: another process cut this page first; the reloaded plan shows what it added.
      const indexes = page.done ? undefined : await appendPage(store, job, next.namespace, next.cursor, page.value);
      if (indexes && !page.done)
        await saveManifests(
          store,
          plan,
          indexes.map((index, i) => ({ index, ...page.value.shards[i] })),
        );
    } finally {
      await pages.return(undefined);
    }
    return viewOf(await requirePlan(store, job));
  },

  async runSlice({ store, operation, job, shard, budgetMs, migration, rate }) {
    const plan = await requirePlan(store, job);
    const prefetched = await loadManifest(store, plan, shard);
    // Every shard's slice may run at once, each with its own limiter: each takes its share, and ramps from the job's start.
    const limiter = rate && new RateLimiter({ ...sliceShare(planRate(rate, plan), plan.shards.length), rampFrom: plan.createdAt.getTime() });
    const { done } = await runShardSlice({ store, work: operationOf({ job, operation }), job, index: shard, budgetMs, migration, prefetched, limiter });
    return { done };
  },

  async totals(store, job) {
    const plan = await loadPlan(store, job);
    if (!plan) return undefined;
    const states = await loadShardStates(store, plan);
    const { warnings, ...progress } = summarize(plan, states);
    return { ...progress, warnings: formatWarnings(warnings), complete: plan.pending.length === 0 && states.every((s) => s.done) };
  },

  clear: clearJobState,
};
