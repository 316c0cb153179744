import type { Datastore } from '../datastore';
import type { MigrationOperation } from './definition';

/** The runner's view of an executor (src/executors implements it, in-process or as Cloud Tasks). */
export interface OperationProgress {
  shardsTotal: number;
  shardsDone: number;
  scanned: number;
  changed: number;
  deleted: number;
  skipped: number;
  failed: number;
  estimatedTotal?: number;
}

export interface DryRunSample {
  key: string;
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
}

export interface OperationResult extends OperationProgress {
  samples?: DryRunSample[];
  warnings: string[];
}

export interface RunOperationRequest {
  store: Datastore;
  runId: string;
  operation: MigrationOperation;
  dryRun?: boolean;
  migration?: string;
  onProgress?: (progress: OperationProgress) => void;
  signal?: AbortSignal;
}

export interface Executor {
  runOperation(request: RunOperationRequest): Promise<OperationResult>;
  clearOperationState(store: Datastore, runId: string): Promise<void>;
}
