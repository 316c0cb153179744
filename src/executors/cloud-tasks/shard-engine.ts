import type { JobRef } from '../../control';
import type { Datastore } from '../../datastore';
import { operationOf, type OperationProgress } from '../../migrations';
import type { Operation } from '../../operations';
import { clearJobState, Job, jobTotals, type JobPlan, type KeyRange, type RateOption } from '../../sharding';

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

/** `rate` is rateFor's answer: the operation's own, which the Job finds again, else one made of the run-wide maximum. */
const jobOf = (store: Datastore, operation: Operation, job: JobRef, rate?: RateOption): Job => new Job(store, job, operationOf({ job, operation }), rate?.maxEntitiesPerSecond);

/** The pipeline's engine: the sharding layer's Job, driven by ids. */
export const shardedEngine: ShardEngine = {
  ensurePlan: async (store, operation, job, bounds, rate) => viewOf(await jobOf(store, operation, job, rate).plan(bounds)),
  extendPlan: async (store, operation, job) => viewOf(await jobOf(store, operation, job).extend()),
  async runSlice({ store, operation, job, shard, budgetMs, migration, rate }) {
    const { done } = await jobOf(store, operation, job, rate).slice(shard, { budgetMs, migration });
    return { done };
  },
  totals: jobTotals,
  clear: clearJobState,
};
