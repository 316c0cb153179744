import type { Datastore, Entity, Key } from '../datastore';
import { DsMigrateError } from '../errors';
import type { DataOperation } from '../operations';
import { addCounts, applyBatch, batchImages, formatWarnings, keyPages, mergeWarnings, zeroCounts, type DryRunSample, type Warnings } from '../sharding';
import type { OperationProgress, OperationResult } from '../migrations';

const SAMPLES = 5;

/**
 * Runs the operation's per-entity logic on every entity it would touch and writes nothing: no data,
 * no plan, no checkpoints, no reserved ids. One key stream per namespace, plain (non-transactional)
 * lookups; counts and up to five before/after samples come back.
 */
export async function dryRunOperation(
  store: Datastore,
  operation: DataOperation,
  options: { migration?: string; signal?: AbortSignal; onProgress?: (p: OperationProgress) => void } = {},
): Promise<OperationResult> {
  const namespaces = await operation.namespaces(store);
  const counts = zeroCounts();
  const warnings: Warnings = {};
  const samples: DryRunSample[] = [];
  const images = { writes: 0, bytes: 0 };
  let shardsDone = 0;
  for (const namespace of namespaces) {
    for await (const keys of keyPages(store, { kind: operation.kind, namespace, filters: operation.filters })) {
      for (let i = 0; i < keys.length; i += operation.batchSize) {
        if (options.signal?.aborted) throw new DsMigrateError('ABORTED', `The dry run of ${operation.type} on ${operation.kind} was interrupted.`, { kind: operation.kind });
        const batch = keys.slice(i, i + operation.batchSize);
        const found = await lookupAll(store, [...batch, ...batch.flatMap((k) => operation.relatedKeys(k))]);
        const applied = await applyBatch(operation, batch, found, { byteBudget: Infinity, migration: options.migration, dryRun: true, samples: { limit: SAMPLES, into: samples } });
        addCounts(counts, applied.delta);
        // What undo would add: the images themselves, made as a batch would make them.
        for (const { bytes } of operation.undo ? batchImages(store, operation.undo, 'dry-run#0', applied, found) : []) {
          images.writes++;
          images.bytes += bytes;
        }
        mergeWarnings(warnings, applied.warnings);
        options.onProgress?.({ shardsTotal: namespaces.length, shardsDone, ...counts });
      }
    }
    shardsDone++;
  }
  const cost = operation.undo ? [`Before-images (undo, kept ${operation.undo.retain}): ${images.writes} more writes, ${images.bytes.toLocaleString('en-US')} bytes`] : [];
  return { shardsTotal: namespaces.length, shardsDone, ...counts, samples, warnings: [...formatWarnings(warnings), ...cost] };
}

async function lookupAll(store: Datastore, keys: readonly Key[]): Promise<Map<string, Entity>> {
  const unique = [...new Map(keys.map((k) => [k.toString(), k])).values()];
  const found = new Map<string, Entity>();
  for (const entity of await store.lookup(unique)) if (entity) found.set(entity.key.toString(), entity);
  return found;
}
