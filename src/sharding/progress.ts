import type { Datastore } from '../datastore';
import { decodeShard, freshShard, shardKey, type ShardState } from './checkpoint';
import { addCounts, mergeWarnings, zeroCounts, type Counts, type Warnings } from './counts';
import { runKey, type RunPlan } from './run-plan';
import { loadPlan } from './planner';

export interface RunProgress extends Counts {
  shardsTotal: number;
  shardsDone: number;
  /** Entities to scan, where the plan knows (shards cut from a fully read key stream). */
  estimatedTotal?: number;
}

/** Every shard's state, fresh for shards that have not committed a batch yet. */
export async function loadShardStates(store: Datastore, plan: RunPlan): Promise<ShardState[]> {
  const found = await store.lookup(plan.shards.map((_, i) => shardKey(plan.runId, i)));
  return plan.shards.map((range, i) => (found[i] ? decodeShard(found[i]!) : freshShard(plan.runId, i, range)));
}

export function summarize(plan: RunPlan, states: readonly ShardState[]): RunProgress & { warnings: Warnings } {
  const counts = zeroCounts();
  const warnings: Warnings = {};
  for (const s of states) {
    addCounts(counts, s.counts);
    mergeWarnings(warnings, s.warnings);
  }
  const known = plan.pending.length === 0 && plan.shards.every((s) => s.expected !== undefined);
  return {
    shardsTotal: plan.shards.length,
    shardsDone: states.filter((s) => s.done).length,
    ...counts,
    estimatedTotal: known ? plan.shards.reduce((n, s) => n + (s.expected ?? 0), 0) : undefined,
    warnings,
  };
}

/** Progress of a run from its stored state (for `dsmigrate status`); undefined when it has none. */
export async function readRunProgress(store: Datastore, runId: string): Promise<(RunProgress & { warnings: Warnings }) | undefined> {
  const plan = await loadPlan(store, runId);
  return plan && summarize(plan, await loadShardStates(store, plan));
}

/** Deletes a run's plan and checkpoints, so that the next run with this id starts from scratch. */
export async function clearRunState(store: Datastore, runId: string): Promise<void> {
  const plan = await loadPlan(store, runId);
  if (!plan) return;
  await store.delete(plan.shards.map((_, i) => shardKey(runId, i)));
  await store.delete([runKey(runId)]);
}
