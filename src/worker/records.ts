import type { Datastore, Entity, Key, Transaction } from '../datastore';
import { Recorder, type MigrationOperation, type OperationRecord } from '../migrations';

/**
 * A Recorder whose reads and writes join a transaction, so that a migration's record changes in the
 * same commit as the run's state (an operation finishing, a migration applied). Recorder keeps the
 * record's stored form to itself; this hands it the three calls it makes for get, save and remove
 * (not list, which queries).
 */
export function recorderIn(tx: Transaction, namespace: string): Recorder {
  const view: Pick<Datastore, 'get' | 'save' | 'delete'> = {
    get: (key: Key) => tx.get(key),
    save: async (entities: readonly Entity[]) => entities.forEach((e) => tx.upsert(e)),
    delete: async (keys: readonly Key[]) => keys.forEach((k) => tx.delete(k)),
  };
  return new Recorder(view as Datastore, namespace);
}

/** An operation's record before it has run, as the runner writes it. */
export function emptyOperationRecord(op: MigrationOperation): OperationRecord {
  return { type: op.type, kind: op.kind, done: false, scanned: 0, changed: 0, deleted: 0, skipped: 0, failed: 0, shardsDone: 0, shardsTotal: 0 };
}
