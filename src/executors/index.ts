import type { Datastore } from '../datastore';
import { clearRunState, formatWarnings, readRunProgress } from '../sharding';
import type { OperationProgress } from './executor';

export { type Executor, type OperationProgress, type OperationResult, type RunOperationRequest, type DryRunSample, fingerprint, operationOf } from './executor';
export { LocalExecutor, type LocalExecutorOptions } from './local';
export { dryRunOperation } from './dry-run';
export { runShardSlice, type SliceOptions, type SliceResult } from '../sharding';

/** An operation run's progress from its stored shard state (for `dsmigrate status`); undefined when it has none. */
export async function readOperationProgress(store: Datastore, runId: string): Promise<(OperationProgress & { warnings: string[] }) | undefined> {
  const progress = await readRunProgress(store, runId);
  return progress && { ...progress, warnings: formatWarnings(progress.warnings) };
}

/** Deletes an operation run's plan and checkpoints, before a reverse or a fresh re-run. */
export function clearOperationState(store: Datastore, runId: string): Promise<void> {
  return clearRunState(store, runId);
}
