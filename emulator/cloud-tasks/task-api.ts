import { taskToWire, taskView } from './codec';
import { alreadyExists, failedPrecondition, invalidArgument } from './errors';
import type { TaskRecord } from './model';
import { generateTaskId, parseQueueName, parseTaskName } from './names';
import { pageOf } from './paging';
import type { Scheduler } from './scheduler';
import type { Store } from './store';
import { dispatchDeadlineOf, httpTargetOf, scheduleTimeOf, type DeadlineRange } from './task-input';
import type { CreateTaskRequest, Empty, GetTaskRequest, ListTasksRequest, ListTasksResponse, NameRequest, RunTaskRequest, WireTask } from './wire';

/** The task methods of google.cloud.tasks.v2.CloudTasks. */
export class TaskApi {
  constructor(
    private readonly store: Store,
    private readonly scheduler: Scheduler,
    private readonly deadlineRange: DeadlineRange,
  ) {}

  /** In creation order, which is also the order tasks due at the same time are dispatched in. */
  listTasks(request: ListTasksRequest): ListTasksResponse {
    const queue = this.store.requireQueue(request.parent);
    const view = taskView(request.responseView);
    const tasks = [...queue.tasks.values()].sort((a, b) => a.seq - b.seq);
    const page = pageOf(tasks, (t) => t.seq, request, { defaultSize: 1000, maxSize: 1000 });
    return { tasks: page.items.map((t) => taskToWire(t, view)), nextPageToken: page.nextPageToken };
  }

  getTask(request: GetTaskRequest): WireTask {
    return taskToWire(this.store.requireTask(request.name).task, taskView(request.responseView));
  }

  createTask(request: CreateTaskRequest): WireTask {
    const queue = this.store.requireQueue(parseQueueName(request.parent).name);
    if (queue.state === 'DISABLED') throw failedPrecondition(`Queue ${queue.name} is disabled`);
    const input = request.task;
    if (!input) throw invalidArgument('task is required');
    const now = Date.now();
    const name = this.nameFor(input, queue.name, now);
    const task: TaskRecord = {
      name,
      queueName: queue.name,
      seq: this.store.nextSeq(),
      target: httpTargetOf(input),
      createTime: now,
      dispatchDeadlineMs: dispatchDeadlineOf(input, this.deadlineRange),
      scheduleTime: scheduleTimeOf(input, now),
      dispatchCount: 0,
      responseCount: 0,
      inFlight: false,
      live: true,
      scheduleToken: 0,
    };
    queue.tasks.set(name, task);
    queue.schedule(task);
    this.scheduler.poke();
    return taskToWire(task, taskView(request.responseView));
  }

  deleteTask(request: NameRequest): Empty {
    const { queue, task } = this.store.requireTask(request.name);
    this.store.removeTask(queue, task, Date.now());
    this.scheduler.poke();
    return {};
  }

  /** Dispatches now, even in a paused or rate-limited queue; returns the task as dispatched. */
  runTask(request: RunTaskRequest): WireTask {
    const { queue, task } = this.store.requireTask(request.name);
    if (task.inFlight) throw failedPrecondition(`Task ${task.name} is being dispatched already`);
    this.scheduler.runNow(queue, task);
    return taskToWire(task, taskView(request.responseView));
  }

  /** An explicit name must be free: not a current task, nor one that ran or was deleted within the tombstone window. */
  private nameFor(input: WireTask, queueName: string, now: number): string {
    if (!input.name) return `${queueName}/tasks/${generateTaskId()}`;
    const name = parseTaskName(input.name);
    if (name.queueName !== queueName) throw invalidArgument(`Task name ${name.name} is not in queue ${queueName}`);
    if (this.store.findQueue(queueName)?.tasks.has(name.name)) throw alreadyExists(`Task ${name.name} already exists`);
    if (this.store.tombstones.has(name.name, now)) {
      throw alreadyExists(`Task ${name.name} ran or was deleted recently; its name cannot be reused yet`);
    }
    return name.name;
  }
}
