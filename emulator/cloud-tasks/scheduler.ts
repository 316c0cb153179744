import type { AttemptRunner } from './attempts';
import type { TaskRecord } from './model';
import type { Delivery, Queue } from './queue';
import type { Store } from './store';

/** setTimeout's ceiling; later wake-ups are re-armed when it fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;

interface IdleWaiter {
  /** Only this queue, or everything. */
  queueName?: string;
  resolve: () => void;
  reject: (error: Error) => void;
  timer?: NodeJS.Timeout;
}

/**
 * Decides when deliveries start: one timer, armed for the earliest moment anything can be
 * dispatched (a task's schedule time or the next rate-limit token), never polling. Paused queues
 * and queues at their concurrency limit are skipped; a finished delivery re-arms the timer.
 */
export class Scheduler {
  private timer: NodeJS.Timeout | undefined;
  private wakeAt = Infinity;
  private inFlight = 0;
  private readonly running = new Set<Promise<void>>();
  private waiters: IdleWaiter[] = [];
  private stopped = false;

  constructor(
    private readonly store: Store,
    private readonly runner: AttemptRunner,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** Something changed (a task was added, a queue resumed or reconfigured): look again now. */
  poke(): void {
    this.arm(Date.now());
    this.checkIdle();
  }

  /** RunTask: dispatch at once, whatever the queue's state, rate and concurrency. */
  runNow(queue: Queue, task: TaskRecord): void {
    this.start(queue, { kind: 'task', task });
  }

  get deliveriesInFlight(): number {
    return this.inFlight;
  }

  /**
   * Resolves once no task is waiting or running in the queue, or anywhere when no queue is named
   * (tasks in paused queues count as waiting).
   */
  idle(queueName: string | undefined, timeoutMs: number, describePending: () => string): Promise<void> {
    if (this.isIdle(queueName)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter: IdleWaiter = { resolve, reject, ...(queueName ? { queueName } : {}) };
      waiter.timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`Cloud Tasks emulator not idle after ${timeoutMs} ms: ${describePending()}`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** No new deliveries start after this; running ones finish (or are aborted by the caller). */
  halt(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const waiter of this.waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(new Error('Cloud Tasks emulator stopped'));
    }
  }

  /** Waits for the deliveries under way to settle. */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.running]);
  }

  private arm(at: number): void {
    if (this.stopped || (this.timer && this.wakeAt <= at)) return;
    clearTimeout(this.timer);
    this.wakeAt = at;
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, at - Date.now()));
    this.timer = setTimeout(() => this.tick(), delay);
  }

  private tick(): void {
    this.timer = undefined;
    this.wakeAt = Infinity;
    const now = Date.now();
    let next = Infinity;
    for (const queue of this.store.allQueues()) {
      if (queue.state !== 'RUNNING') continue;
      next = Math.min(next, this.dispatchDue(queue, now));
    }
    if (next < Infinity) this.arm(next);
  }

  /** Starts what `queue` may start now; returns when to look at it again (Infinity: when something changes). */
  private dispatchDue(queue: Queue, now: number): number {
    const limit = queue.settings.rateLimits.maxConcurrentDispatches;
    while (queue.inFlight < limit) {
      const entry = queue.peekDue();
      if (!entry) return Infinity;
      if (entry.at > now) return entry.at;
      const wait = queue.takeToken(now);
      if (wait > 0) return now + wait;
      const delivery = queue.takeDue();
      if (delivery) this.start(queue, delivery);
    }
    return Infinity; // a finishing delivery pokes the scheduler
  }

  private start(queue: Queue, delivery: Delivery): void {
    queue.inFlight += 1;
    this.inFlight += 1;
    const settle = (): void => {
      queue.inFlight -= 1;
      this.inFlight -= 1;
      this.running.delete(running);
      this.poke();
    };
    const running: Promise<void> = this.runner.run(queue, delivery).catch(this.onError).finally(settle);
    this.running.add(running);
  }

  private isIdle(queueName: string | undefined): boolean {
    if (queueName === undefined) return this.inFlight === 0 && this.store.pendingCount() === 0;
    const queue = this.store.findQueue(queueName);
    return !queue || (queue.inFlight === 0 && queue.pending === 0);
  }

  private checkIdle(): void {
    if (this.waiters.length === 0) return;
    const done = this.waiters.filter((waiter) => this.isIdle(waiter.queueName));
    if (done.length === 0) return;
    this.waiters = this.waiters.filter((waiter) => !done.includes(waiter));
    for (const waiter of done) {
      clearTimeout(waiter.timer);
      waiter.resolve();
    }
  }
}
