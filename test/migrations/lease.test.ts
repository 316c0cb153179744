import { setTimeout as sleep } from 'node:timers/promises';
import type { Datastore, RetryOptions, Transaction } from '../../src/datastore';
import { DsMigrateError } from '../../src/errors';
import { Lease, processOwner } from '../../src/migrations';
import { describeEachFlavour, uniqueProject } from '../support/emulators';

interface Faults {
  /** Waited before each transaction, as a slow backend would make it last. */
  delayMs: number;
  /** Whether transactions run their function on a real transaction and then fail instead of committing. */
  failCommits: boolean;
  started: number;
  inFlight: number;
  maxInFlight: number;
}

/** The store with its `transaction` wrapped, so that a test can slow it down or make its commits fail. */
function faulty(store: Datastore): { store: Datastore; faults: Faults } {
  const faults: Faults = { delayMs: 0, failCommits: false, started: 0, inFlight: 0, maxInFlight: 0 };
  const transaction = async <T>(fn: (tx: Transaction) => Promise<T>, options?: RetryOptions): Promise<T> => {
    faults.started++;
    faults.maxInFlight = Math.max(faults.maxInFlight, ++faults.inFlight);
    try {
      await sleep(faults.delayMs);
      return await store.transaction(async (tx) => {
        const result = await fn(tx);
        // Thrown inside: the helper rolls the transaction back, as after a commit that failed.
        if (faults.failCommits) throw new Error('commit failed (injected)');
        return result;
      }, options);
    } finally {
      faults.inFlight--;
    }
  };
  return { store: new Proxy(store, { get: (target, property) => (property === 'transaction' ? transaction : Reflect.get(target, property)) }), faults };
}

async function storedExpiry(store: Datastore): Promise<number | undefined> {
  return (await Lease.holder(store, ''))?.expiresAt.getTime();
}

async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await sleep(20);
}

describeEachFlavour('the migration lease', (ctx) => {
  /** A project of the test's own, so that no other test's lease is in the way. */
  async function fresh(): Promise<{ store: Datastore; faulty: Datastore; faults: Faults }> {
    const store = await ctx.connect({ projectId: uniqueProject('l') });
    const { store: wrapped, faults } = faulty(store);
    return { store, faulty: wrapped, faults };
  }

  it('believes a renewal only once it committed: a failed one leaves the old expiry, stored and believed', async () => {
    const { store, faulty, faults } = await fresh();
    const lease = new Lease(faulty, '', processOwner(), 5000);
    await lease.acquire('test');
    const acquired = await storedExpiry(store);
    expect(lease.believedExpiry).toBe(acquired);

    // Late enough that a renewal writes (a lease renewed a moment ago is left as it is), so that it would be seen to move the expiry.
    await sleep(700);
    faults.failCommits = true;
    await expect(lease.renew()).rejects.toThrow('commit failed (injected)');
    expect(lease.believedExpiry).toBe(acquired);
    expect(await storedExpiry(store)).toBe(acquired);

    faults.failCommits = false;
    await expect(lease.renew()).resolves.toBe('held');
    expect(lease.believedExpiry).toBeGreaterThan(acquired!);
    expect(await storedExpiry(store)).toBe(lease.believedExpiry);
    await lease.release();
  });

  it('is renewed by few of the many tasks that check it, not by each of them once it is due', async () => {
    const { store } = await fresh();
    const owner = 'run:many-tasks';
    const ttlMs = 2000;
    await new Lease(store, '', owner, ttlMs).acquire('test');
    let writes = 0;
    // Counts the transactions that committed with a write of the lease.
    const counting = new Proxy(store, {
      get: (target, property) =>
        property === 'transaction'
          ? async <T>(fn: (tx: Transaction) => Promise<T>, options?: RetryOptions): Promise<T> => {
              let wrote = false;
              const result = await target.transaction((tx) => {
                wrote = false;
                const watched = new Proxy(tx, {
                  get: (t, name) => (name === 'upsert' ? (entity: Parameters<Transaction['upsert']>[0]) => ((wrote = true), t.upsert(entity)) : Reflect.get(t, name)),
                });
                return fn(watched);
              }, options);
              if (wrote) writes++;
              return result;
            }
          : Reflect.get(target, property),
    });
    // Eight tasks of one Cloud Tasks run, each checking the lease every 50 ms for a time to live and a half.
    const until = Date.now() + ttlMs * 1.5;
    const task = async (): Promise<void> => {
      while (Date.now() < until) {
        expect(await new Lease(counting, '', owner, ttlMs).keep()).toBe('held');
        await sleep(50);
      }
    };
    await Promise.all(Array.from({ length: 8 }, task));
    // A renewal every quarter to three quarters of the time to live: a handful, where each task renewing once due wrote dozens.
    expect(writes).toBeGreaterThanOrEqual(1);
    expect(writes).toBeLessThanOrEqual(8);
    expect((await storedExpiry(store))!).toBeGreaterThan(Date.now());
  });

  it("shares one renewal among a process's tasks that find it due together: their transactions on the lease would contend", async () => {
    const { store, faulty, faults } = await fresh();
    const owner = 'run:due-together';
    const ttlMs = 2000;
    await new Lease(store, '', owner, ttlMs).acquire('test');
    const acquired = (await storedExpiry(store))!;
    // Due (a renewal writes), and each renewal's transaction slow enough that all eight are begun while the first is in flight.
    await sleep(600);
    faults.delayMs = 300;
    const renewed = await Promise.all(Array.from({ length: 8 }, () => new Lease(faulty, '', owner, ttlMs).renew()));
    expect(renewed).toEqual(Array.from({ length: 8 }, () => 'held'));
    expect(faults.started).toBe(1);
    expect((await storedExpiry(store))!).toBeGreaterThan(acquired);
    // Once it has settled, the next renewal is a transaction of its own.
    await new Lease(faulty, '', owner, ttlMs).renew();
    expect(faults.started).toBe(2);
  });

  it('never overlaps renewals, however slow, and schedules none once stopped', async () => {
    const { faulty, faults } = await fresh();
    // Renewals every ~333 ms, each slower than that.
    const lease = new Lease(faulty, '', processOwner(), 1000);
    await lease.acquire('test');
    faults.delayMs = 500;
    faults.maxInFlight = 0;
    const renewalsBefore = faults.started;
    const signal = lease.keepRenewed();
    await sleep(2000);
    lease.stopRenewing();
    const renewalsAtStop = faults.started;
    await until(() => faults.inFlight === 0, 5000);
    await sleep(800);

    expect(renewalsAtStop - renewalsBefore).toBeGreaterThanOrEqual(2);
    expect(faults.maxInFlight).toBe(1);
    expect(faults.started).toBe(renewalsAtStop);
    expect(signal.aborted).toBe(false);
    faults.delayMs = 0;
    await lease.release();
  });

  it('is lost, with LEASE_LOST, once renewals kept failing past the believed expiry', async () => {
    const { faulty, faults } = await fresh();
    const lease = new Lease(faulty, '', processOwner(), 1000);
    await lease.acquire('test');
    faults.failCommits = true;
    const renewalsBefore = faults.started;
    const signal = lease.keepRenewed();
    let abortedAt = 0;
    signal.addEventListener('abort', () => (abortedAt = Date.now()));
    await until(() => signal.aborted, 3000);

    expect(signal.aborted).toBe(true);
    // The failures before the expiry were retried, not taken for a loss.
    expect(faults.started - renewalsBefore).toBeGreaterThanOrEqual(2);
    expect(abortedAt).toBeGreaterThanOrEqual(lease.believedExpiry);
    expect(signal.reason).toBeInstanceOf(DsMigrateError);
    expect((signal.reason as DsMigrateError).code).toBe('LEASE_LOST');
  });

  it('moves the stored expiry forward while kept renewed, and release removes the lease', async () => {
    const { store } = await fresh();
    const lease = new Lease(store, '', processOwner(), 1000);
    await lease.acquire('test');
    const acquired = (await storedExpiry(store))!;
    const signal = lease.keepRenewed();
    await sleep(1200);

    const renewed = (await storedExpiry(store))!;
    expect(renewed).toBeGreaterThan(acquired);
    expect(lease.believedExpiry).toBeGreaterThanOrEqual(renewed);
    expect(signal.aborted).toBe(false);
    await lease.release();
    expect(await Lease.holder(store, '')).toBeUndefined();
  });

  it('is released once: a second release (a finished run, then its driver cleaning up) sends nothing, and an acquire after it holds again', async () => {
    const { store, faulty, faults } = await fresh();
    const lease = new Lease(faulty, '', processOwner(), 5000);
    await lease.acquire('test');
    await lease.release();
    const released = faults.started;
    await lease.release();
    expect(faults.started).toBe(released);
    await lease.acquire('test');
    expect((await Lease.holder(store, ''))?.owner).toBe(lease.owner);
    await lease.release();
    expect(await Lease.holder(store, '')).toBeUndefined();
  });
});
