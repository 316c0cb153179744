import { randomUUID } from 'node:crypto';
import { Entity } from './entity';
import { Key } from './keys';
import type { Datastore } from './store';

/** Where the probe writes: one short-lived entity, in the framework's own kinds. */
export const PROBE_KIND = '_dsmigrate_probe';

const answers = new WeakMap<Datastore, Promise<boolean>>();

/**
 * Whether the backend honours property masks on writes, learned once per store by trying one. Firestore
 * in Datastore mode (in production and its emulator) does; the classic emulator ignores masks and would
 * replace a partially read entity with its part, so masks are only used where this says true.
 */
export function honoursPropertyMasks(store: Datastore): Promise<boolean> {
  let answer = answers.get(store);
  if (!answer) {
    answer = probe(store);
    // A failed probe is no answer: ask again next time.
    answer.catch(() => answers.delete(store));
    answers.set(store, answer);
  }
  return answer;
}

async function probe(store: Datastore): Promise<boolean> {
  const key = Key.of(PROBE_KIND, randomUUID());
  try {
    await store.save([Entity.from(key, { kept: 'before', masked: 'before' })]);
    await store.save([new Entity(key, {}, ['masked']).set('masked', 'after')]);
    const [back] = await store.lookup([key]);
    return back?.get('kept') === 'before' && back.get('masked') === 'after';
  } finally {
    await store.delete([key]);
  }
}
