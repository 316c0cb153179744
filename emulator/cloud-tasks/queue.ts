import { MinHeap } from './min-heap';
import type { QueueConfig, QueueStateName, TaskRecord } from './model';
import type { OutgoingRequest } from './outgoing-request';
import { TokenBucket } from './token-bucket';

/** Something the scheduler may start: an attempt of a task, or a repeat delivery of one that succeeded. */
export type Delivery = { kind: 'task'; task: TaskRecord } | { kind: 'duplicate'; request: OutgoingRequest; deadlineMs: number };

interface DueEntry {
  at: number;
  order: number;
  delivery: Delivery;
  /** For task entries: the task's scheduleToken when queued; a different token means the entry is stale. */
  token: number;
}

/** One queue: its settings, its tasks, and the state the scheduler keeps for it (due-heap, bucket, in-flight count). */
export class Queue {
  state: QueueStateName = 'RUNNING';
  purgeTime?: number;
  readonly tasks = new Map<string, TaskRecord>();
  inFlight = 0;
  private config: QueueConfig;
  private readonly bucket: TokenBucket;
  private readonly due = new MinHeap<DueEntry>((a, b) => a.at < b.at || (a.at === b.at && a.order < b.order));
  private pendingDuplicates = 0;
  private duplicateOrder = 0;

  constructor(
    readonly name: string,
    config: QueueConfig,
    now: number,
  ) {
    this.config = config;
    this.bucket = new TokenBucket(config.rateLimits.maxDispatchesPerSecond, config.rateLimits.maxBurstSize, now);
  }

  get settings(): QueueConfig {
    return this.config;
  }

  configure(config: QueueConfig, now: number): void {
    this.config = config;
    this.bucket.reconfigure(config.rateLimits.maxDispatchesPerSecond, config.rateLimits.maxBurstSize, now);
  }

  /** Queues the task for its scheduleTime, superseding any earlier entry for it. */
  schedule(task: TaskRecord): void {
    task.scheduleToken += 1;
    this.due.push({ at: task.scheduleTime, order: task.seq, delivery: { kind: 'task', task }, token: task.scheduleToken });
  }

  scheduleDuplicate(request: OutgoingRequest, deadlineMs: number, at: number): void {
    this.pendingDuplicates += 1;
    // Negative order: a duplicate goes before tasks due at the same moment, as a redelivery would.
    this.due.push({ at, order: -++this.duplicateOrder, delivery: { kind: 'duplicate', request, deadlineMs }, token: 0 });
  }

  /** The earliest delivery still valid, without taking it. */
  peekDue(): DueEntry | undefined {
    for (let entry = this.due.peek(); entry; entry = this.due.peek()) {
      if (this.isCurrent(entry)) return entry;
      this.due.pop();
    }
    return undefined;
  }

  takeDue(): Delivery | undefined {
    const entry = this.peekDue();
    if (!entry) return undefined;
    this.due.pop();
    if (entry.delivery.kind === 'duplicate') this.pendingDuplicates -= 1;
    return entry.delivery;
  }

  /** 0 if a dispatch may start now (a token was taken), else milliseconds until one may. */
  takeToken(now: number): number {
    return this.bucket.take(now);
  }

  /** Drops every task and pending duplicate; returns the tasks so that their names can be tombstoned. */
  clear(): TaskRecord[] {
    const removed = [...this.tasks.values()];
    this.tasks.clear();
    this.due.clear();
    this.pendingDuplicates = 0;
    return removed;
  }

  /** Tasks waiting or running, plus duplicate deliveries not yet started. */
  get pending(): number {
    return this.tasks.size + this.pendingDuplicates;
  }

  private isCurrent(entry: DueEntry): boolean {
    const { delivery } = entry;
    if (delivery.kind === 'duplicate') return true;
    const task = delivery.task;
    return task.live && !task.inFlight && entry.token === task.scheduleToken;
  }
}
