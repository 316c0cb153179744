import { alreadyExists, invalidArgument } from './errors';
import { queueToWire } from './codec';
import { checkLocationName, parseQueueName } from './names';
import { pageOf } from './paging';
import { Queue } from './queue';
import { applyUpdate, configFromWire } from './queue-config';
import type { Scheduler } from './scheduler';
import type { Store } from './store';
import type { CreateQueueRequest, Empty, ListQueuesRequest, ListQueuesResponse, NameRequest, UpdateQueueRequest, WireQueue } from './wire';

const STATE_FILTER = /^\s*state\s*[:=]\s*(RUNNING|PAUSED|DISABLED)\s*$/;

/** The queue methods of google.cloud.tasks.v2.CloudTasks. */
export class QueueApi {
  constructor(
    private readonly store: Store,
    private readonly scheduler: Scheduler,
  ) {}

  listQueues(request: ListQueuesRequest): ListQueuesResponse {
    const parent = checkLocationName(request.parent);
    const filter = request.filter?.trim() ?? '';
    const state = filter ? STATE_FILTER.exec(filter)?.[1] : undefined;
    if (filter && !state) throw invalidArgument(`Unsupported filter "${filter}": the emulator understands only "state: PAUSED" and the like`);
    const queues = [...this.store.allQueues()]
      .filter((q) => parseQueueName(q.name).parent === parent && (!state || q.state === state))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const page = pageOf(queues, (q) => q.name, request, { defaultSize: 100, maxSize: 9800 });
    return { queues: page.items.map(queueToWire), nextPageToken: page.nextPageToken };
  }

  getQueue(request: NameRequest): WireQueue {
    return queueToWire(this.store.requireQueue(request.name));
  }

  createQueue(request: CreateQueueRequest): WireQueue {
    const parent = checkLocationName(request.parent);
    if (!request.queue) throw invalidArgument('queue is required');
    const name = parseQueueName(request.queue.name);
    if (name.parent !== parent) throw invalidArgument(`Queue name ${name.name} is not under parent ${parent}`);
    if (this.store.findQueue(name.name)) throw alreadyExists(`Queue ${name.name} already exists`);
    const queue = new Queue(name.name, configFromWire(request.queue), Date.now());
    this.store.addQueue(queue);
    return queueToWire(queue);
  }

  /** Like Cloud Tasks, UpdateQueue creates the queue when it does not exist yet. */
  updateQueue(request: UpdateQueueRequest): WireQueue {
    if (!request.queue) throw invalidArgument('queue is required');
    const name = parseQueueName(request.queue.name).name;
    const paths = request.updateMask?.paths ?? [];
    const now = Date.now();
    const existing = this.store.findQueue(name);
    if (!existing) {
      const created = new Queue(name, applyUpdate(configFromWire({}), request.queue, paths), now);
      this.store.addQueue(created);
      return queueToWire(created);
    }
    existing.configure(applyUpdate(existing.settings, request.queue, paths), now);
    this.scheduler.poke(); // higher limits may let more through now
    return queueToWire(existing);
  }

  deleteQueue(request: NameRequest): Empty {
    this.store.deleteQueue(this.store.requireQueue(request.name), Date.now());
    this.scheduler.poke();
    return {};
  }

  purgeQueue(request: NameRequest): WireQueue {
    const queue = this.store.requireQueue(request.name);
    this.store.purge(queue, Date.now());
    this.scheduler.poke();
    return queueToWire(queue);
  }

  pauseQueue(request: NameRequest): WireQueue {
    const queue = this.store.requireQueue(request.name);
    queue.state = 'PAUSED';
    return queueToWire(queue);
  }

  resumeQueue(request: NameRequest): WireQueue {
    const queue = this.store.requireQueue(request.name);
    queue.state = 'RUNNING';
    this.scheduler.poke();
    return queueToWire(queue);
  }
}
