import type { Datastore } from '../datastore';
import type { OperationProgress } from '../migrations';
import type { Operation } from '../operations';

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
  /** The operation's stored plan, made now if it has none (the first to store one wins). */
  ensurePlan(store: Datastore, operation: Operation, runId: string): Promise<PlanView>;
  /** Cuts the next page of shards from a pending key stream. */
  extendPlan(store: Datastore, operation: Operation, runId: string): Promise<PlanView>;
  /** One time-boxed slice of one shard, from its checkpoint; `done` once the shard has finished. */
  runSlice(request: { store: Datastore; operation: Operation; runId: string; shard: number; budgetMs: number; migration: string }): Promise<{ done: boolean }>;
  /** Counts summed over the shards' checkpoints; undefined before the operation has a plan. */
  totals(store: Datastore, runId: string): Promise<OperationTotals | undefined>;
  /** Once the operation is complete: drops what only running it needed (its checkpoints stay, for `status` and resumes). */
  finish(store: Datastore, runId: string): Promise<void>;
  /** Forgets the operation's plan and checkpoints. */
  clear(store: Datastore, runId: string): Promise<void>;
}
