import type { JobRef } from '../control';
import type { Datastore } from '../datastore';
import { DsMigrateError } from '../errors';
import { isDataOperation, type DataOperation, type Operation } from '../operations';
import type { DryRunSample, JobCounts, KeyRange } from '../sharding';

/** Where an operation stands: shards, and entities scanned, changed, deleted, skipped, failed. */
export type OperationProgress = JobCounts & {
  /** The write limit in force, entities per second over all shards (see docs/operations.md, "Write rate"). */
  rateLimit?: number;
  /** Keys read ahead of their batches and held by the executor now: at most 1.5 pages (LocalExecutorOptions.pageKeys), whatever the kind's size. */
  keysHeld?: number;
};
export type { DryRunSample };

export interface OperationResult extends OperationProgress {
  /** Dry runs: up to five entities as they are and as they would be. */
  samples?: DryRunSample[];
  /** E.g. copied entities whose parent is missing in the target namespace. */
  warnings: string[];
}

export interface RunOperationRequest {
  store: Datastore;
  /** The job: its plan and checkpoints are keyed by it, so a second call resumes the first. */
  job: JobRef;
  /** Only these key ranges (what another job committed, to undo or redo); the whole scope when absent. */
  bounds?: readonly KeyRange[];
  operation: Operation;
  /** Run the per-entity logic but write nothing (no data, no checkpoints); returns counts and samples. */
  dryRun?: boolean;
  /** Named in errors. */
  migration?: string;
  /** Called at least once per committed batch. */
  onProgress?: (progress: OperationProgress) => void;
  /** Lines a RunFunction step logs (FunctionContext.log). */
  onLog?: (message: string) => void;
  /** Stops the job within one batch (the lease was lost); the reason is thrown. */
  signal?: AbortSignal;
}

/** Runs a job's shards somewhere, resumably. The local runner drives it (src/migrations/runner.ts). */
export interface Executor {
  runOperation(request: RunOperationRequest): Promise<OperationResult>;
  /**
   * A hint that this operation's job is the run's first: an executor may start reading its scope while the
   * run's lifecycle goes on. Given first from the plan as the records stand (before the lease), then from
   * the plan made under the lease; the operation is the very object the matching runOperation call passes.
   * Undefined: no job will take what was read ahead (let it go).
   */
  readAhead?(store: Datastore, operation: Operation | undefined): void;
}

/** The request's operation, checked to be a data operation (one that runs in shards). */
export function operationOf(request: Pick<RunOperationRequest, 'job' | 'operation'>): DataOperation {
  if (!isDataOperation(request.operation)) {
    throw new DsMigrateError('BAD_INPUT', `Job ${request.job.id} is not a datastore-migrate data operation (such as new AddFieldData(...)).`, { job: request.job.id });
  }
  return request.operation;
}
