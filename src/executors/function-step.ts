import type { OperationResult, RunOperationRequest } from '../migrations';
import type { RunFunction } from '../operations';
import { zeroJobCounts } from '../sharding';

/**
 * Runs a RunFunction step, the same for both drivers: the local executor calls it in the run's process,
 * the Cloud Tasks pipeline in the step's start task. Its count is reported as changed.
 */
export async function runFunctionStep(operation: RunFunction, request: RunOperationRequest): Promise<OperationResult> {
  const changed = await operation.invoke({
    store: request.store,
    migration: request.migration ?? request.job.id,
    dryRun: request.dryRun ?? false,
    signal: request.signal ?? new AbortController().signal,
    log: (message) => request.onLog?.(String(message)),
  });
  return { ...zeroJobCounts(), changed, shardsDone: 1, shardsTotal: 1, warnings: [] };
}
