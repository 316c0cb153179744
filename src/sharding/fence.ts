import type { Transaction } from '../datastore';

/**
 * A check the layer above runs first in a transaction of this layer that ends a job's state (closing
 * or clearing it): the run's lease check, so that a run that lost its lease ends nothing of the
 * holder's. Passed in, since this layer knows no lease.
 */
export type Fence = (tx: Transaction) => Promise<void>;

export const noFence: Fence = async () => undefined;
