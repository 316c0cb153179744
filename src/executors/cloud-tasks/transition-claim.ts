import { Entity, GrpcCode, grpcCode, type Datastore, type Key } from '../../datastore';

/**
 * Who moves a run past one of its operations. Several tasks can see the operation complete at the
 * same moment (its last shards finishing together); each would then read and write the run's state
 * in a transaction, and on a backend with pessimistic locks (Firestore, its emulator) such
 * transactions on one entity wait on each other for seconds. So the first to see it inserts a claim,
 * an insert that succeeds once, and only the claimant (or a retry of its own task) goes on to the
 * transaction. The transaction still checks the run's step, so the claim only spares contention;
 * exactly-once rests on the transaction. Claims are `_dsmigrate_transition` entities (src/control/keys.ts).
 */

/**
 * True if `claimant` holds the claim: it just made it, made it before (a retry of its own task), or took
 * over one older than `staleMs`, whose holder died in a delivery that Cloud Tasks does not retry (a
 * duplicate) before it could release it.
 */
export async function claim(store: Datastore, key: Key, claimant: string, staleMs: number): Promise<boolean> {
  try {
    await store.commit([{ insert: Entity.from(key, { claimant, at: new Date() }) }]);
    return true;
  } catch (error) {
    if (grpcCode(error) !== GrpcCode.ALREADY_EXISTS) throw error;
  }
  return store.transaction(async (tx) => {
    const held = await tx.get(key);
    if (!held || held.get('claimant') === claimant) return true;
    const at = held.get('at');
    if (at instanceof Date && Date.now() - at.getTime() < staleMs) return false;
    tx.upsert(Entity.from(key, { claimant, at: new Date() }));
    return true;
  });
}

/** Once the transition is done: a task that sees the step complete later finds the run moved on. */
export async function releaseClaim(store: Datastore, key: Key): Promise<void> {
  await store.delete([key]);
}
