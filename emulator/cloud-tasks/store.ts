import { notFound } from './errors';
import type { TaskRecord } from './model';
import { parseQueueName, parseTaskName } from './names';
import { Queue } from './queue';
import { Tombstones } from './tombstones';

/** All queues and their tasks, plus the names that may not be reused yet. In memory only. */
export class Store {
  private readonly queues = new Map<string, Queue>();
  private seq = 0;
  readonly tombstones: Tombstones;

  constructor(tombstoneMs: number) {
    this.tombstones = new Tombstones(tombstoneMs);
  }

  nextSeq(): number {
    return ++this.seq;
  }

  allQueues(): IterableIterator<Queue> {
    return this.queues.values();
  }

  findQueue(name: string): Queue | undefined {
    return this.queues.get(name);
  }

  requireQueue(name: string | undefined): Queue {
    const parsed = parseQueueName(name);
    const queue = this.queues.get(parsed.name);
    if (!queue) throw notFound(`Queue ${parsed.name} does not exist`);
    return queue;
  }

  addQueue(queue: Queue): void {
    this.queues.set(queue.name, queue);
  }

  /** Removes the queue; its tasks count as deleted. */
  deleteQueue(queue: Queue, now: number): void {
    this.queues.delete(queue.name);
    this.forget(queue.clear(), now);
  }

  requireTask(name: string | undefined): { queue: Queue; task: TaskRecord } {
    const parsed = parseTaskName(name);
    const queue = this.queues.get(parsed.queueName);
    const task = queue?.tasks.get(parsed.name);
    if (!queue || !task) throw notFound(`Task ${parsed.name} does not exist (it may have run, been deleted or purged)`);
    return { queue, task };
  }

  /** The task is gone (ran, dropped, deleted): its name stays reserved for the tombstone window. */
  removeTask(queue: Queue, task: TaskRecord, now: number): void {
    if (queue.tasks.get(task.name) === task) queue.tasks.delete(task.name);
    this.forget([task], now);
  }

  purge(queue: Queue, now: number): void {
    queue.purgeTime = now;
    this.forget(queue.clear(), now);
  }

  /** Tasks waiting, running or about to be redelivered, in all queues. */
  pendingCount(): number {
    let count = 0;
    for (const queue of this.queues.values()) count += queue.pending;
    return count;
  }

  reset(): void {
    for (const queue of this.queues.values()) queue.clear().forEach((task) => (task.live = false));
    this.queues.clear();
    this.tombstones.clear();
  }

  private forget(tasks: readonly TaskRecord[], now: number): void {
    for (const task of tasks) {
      task.live = false;
      this.tombstones.add(task.name, now);
    }
  }
}
