import type { Entity, Key } from '../../src/datastore';
import type { EntityDecision, ShardWork } from '../../src/sharding';

/** The shard engine's view of an operation, on kind P, for unit tests of batching: skips every entity unless told otherwise. */
export function shardWork(apply: (entity: Entity) => EntityDecision = () => ({ action: 'skip' }), related: (key: Key) => Key[] = () => [], extra: Partial<ShardWork> = {}): ShardWork {
  return { type: 'Test', kind: 'P', filters: [], batchSize: 400, skipErrors: false, relatedKeys: related, apply, ...extra };
}
