import type { Datastore } from '../datastore';
import { DsMigrateError } from '../errors';
import { Operation } from '../operations';
import type { DryRunSample, RunProgress } from '../sharding';

/** Where an operation stands: shards, and entities scanned, changed, deleted, skipped, failed. */
export type OperationProgress = RunProgress;
export type { DryRunSample };

export interface OperationResult extends OperationProgress {
  /** Dry runs: up to five entities as they are and as they would be. */
  samples?: DryRunSample[];
  /** E.g. copied entities whose parent is missing in the target namespace. */
  warnings: string[];
}

export interface RunOperationRequest {
  store: Datastore;
  /** Stable and unique per (migration, operation index), e.g. 'default:0003_x#1'; the shard state is keyed by it. */
  runId: string;
  operation: Operation;
  /** Run the per-entity logic but write nothing (no data, no checkpoints); returns counts and samples. */
  dryRun?: boolean;
  /** Named in errors. */
  migration?: string;
  /** Called at least once per committed batch. */
  onProgress?: (progress: OperationProgress) => void;
  signal?: AbortSignal;
}

/** Runs an operation's shards somewhere (in this process, or as Cloud Tasks), resumably. */
export interface Executor {
  runOperation(request: RunOperationRequest): Promise<OperationResult>;
  clearOperationState(store: Datastore, runId: string): Promise<void>;
}

/** The request's operation, checked to be one of ours (the runner's type is structural). */
export function operationOf(request: RunOperationRequest): Operation {
  if (!(request.operation instanceof Operation)) {
    throw new DsMigrateError('BAD_INPUT', `Operation ${request.runId} is not a datastore-migrate operation (such as new AddFieldData(...)).`, { runId: request.runId });
  }
  return request.operation;
}

/** What a stored plan is checked against when a run is resumed (see Operation.fingerprint). */
export function fingerprint(operation: Operation): string {
  return operation.fingerprint();
}
