import { status } from '@grpc/grpc-js';
import { retriesExhausted, retryDelayMs } from './backoff';
import type { DeliveryOutcome, Deliverer } from './deliverer';
import { buildDispatchRequest, type TokenSources } from './dispatch-request';
import type { FaultInjector, FaultRoll } from './faults';
import { rpcCodeForHttpStatus } from './http-status';
import type { Attempt, PreviousFailure, RpcStatus, TaskRecord } from './model';
import { shortName } from './names';
import type { OutgoingRequest } from './outgoing-request';
import type { Delivery, Queue } from './queue';
import type { EmulatorStats } from './stats';
import type { Store } from './store';

export interface AttemptDeps {
  store: Store;
  deliverer: Deliverer;
  faults: FaultInjector;
  stats: EmulatorStats;
  tokens: TokenSources;
  log: (line: string) => void;
}

/** Runs one delivery and applies its outcome to the task: done, retried later, or dropped. */
export class AttemptRunner {
  /** Bumped by reset(): attempts started before it finish without touching counters or tasks. */
  private generation = 0;

  constructor(private readonly deps: AttemptDeps) {}

  forgetRunning(): void {
    this.generation += 1;
  }

  /**
   * Everything before the first await happens synchronously, so a caller (RunTask) sees the task
   * already marked as dispatched when this returns its promise.
   */
  async run(queue: Queue, delivery: Delivery): Promise<void> {
    if (delivery.kind === 'duplicate') return this.redeliver(delivery.request, delivery.deadlineMs, 'duplicates');
    const { task } = delivery;
    const request = buildDispatchRequest(
      task.target,
      {
        queueId: shortName(queue.name),
        taskId: shortName(task.name),
        retryCount: task.dispatchCount,
        executionCount: task.responseCount,
        etaMs: task.scheduleTime,
        ...(task.previousFailure ? { previousFailure: task.previousFailure } : {}),
      },
      this.deps.tokens,
    );
    const roll = this.deps.faults.roll();
    const attempt = this.attempt(queue, task, request, roll);
    if (roll.fail || !roll.overlappingDuplicate) return attempt;
    // Sent beside the attempt rather than queued: a glitch of delivery, not a dispatch, so neither the
    // rate limit nor max_concurrent_dispatches holds it back. The attempt's outcome does not wait for
    // it (a retry may overlap it too), but this promise does, so that idle() and stop() see it.
    await Promise.all([attempt, this.redeliver(request, task.dispatchDeadlineMs, 'overlappingDuplicates')]);
  }

  private async attempt(queue: Queue, task: TaskRecord, request: OutgoingRequest, roll: FaultRoll): Promise<void> {
    const { stats, deliverer } = this.deps;
    const now = Date.now();
    const attempt: Attempt = { scheduleTime: task.scheduleTime, dispatchTime: now };
    task.inFlight = true;
    task.scheduleToken += 1; // any queued entry for it is now stale
    task.dispatchCount += 1;
    task.firstAttempt ??= attempt;
    task.lastAttempt = attempt;
    stats.dispatches += 1;
    const generation = this.generation;

    const fault = roll.fail ? 'fail' : roll.lostAnswer ? 'lose-answer' : 'none';
    const outcome = await deliverer.deliver(request, task.dispatchDeadlineMs, fault);
    if (outcome.kind === 'aborted' || generation !== this.generation) return; // stopping, or reset meanwhile
    if (outcome.kind !== 'injected') stats.requestsSent += 1;
    const finishedAt = Date.now();
    attempt.responseTime = finishedAt;
    attempt.responseStatus = statusOf(outcome);
    if (outcome.kind === 'response') task.responseCount += 1;
    task.inFlight = false;
    const succeeded = attempt.responseStatus.code === status.OK;
    this.count(outcome, succeeded);
    this.deps.log(`${task.name} attempt ${task.dispatchCount}: ${attempt.responseStatus.message}`);

    // Deleted or purged while running: the outcome changes nothing.
    if (!task.live) return;
    if (succeeded) {
      this.deps.store.removeTask(queue, task, finishedAt);
      if (roll.duplicate) queue.scheduleDuplicate(request, task.dispatchDeadlineMs, finishedAt);
      return;
    }
    task.previousFailure = previousFailureOf(outcome, attempt.responseStatus);
    const config = queue.settings.retryConfig;
    const firstAt = task.firstAttempt?.dispatchTime ?? now;
    if (retriesExhausted(config, task.dispatchCount, firstAt, finishedAt)) {
      stats.dropped += 1;
      this.deps.store.removeTask(queue, task, finishedAt);
      this.deps.log(`${task.name} dropped after ${task.dispatchCount} attempts`);
      return;
    }
    task.scheduleTime = finishedAt + retryDelayMs(config, task.dispatchCount);
    queue.schedule(task);
  }

  /** A repeat delivery whose outcome the task never learns of; only counted. */
  private async redeliver(request: OutgoingRequest, deadlineMs: number, counter: 'duplicates' | 'overlappingDuplicates'): Promise<void> {
    const generation = this.generation;
    const outcome = await this.deps.deliverer.deliver(request, deadlineMs, 'none');
    if (outcome.kind === 'aborted' || generation !== this.generation) return;
    this.deps.stats[counter] += 1;
    this.deps.stats.requestsSent += 1;
    const what = counter === 'duplicates' ? 'duplicate' : 'overlapping duplicate';
    this.deps.log(`${what} delivery of ${request.headers['X-CloudTasks-TaskName'] ?? request.url}: ${statusOf(outcome).message}`);
  }

  private count(outcome: DeliveryOutcome, succeeded: boolean): void {
    const { stats } = this.deps;
    if (succeeded) stats.successes += 1;
    else stats.failures += 1;
    if (outcome.kind === 'injected') stats.injectedFailures += 1;
    if (outcome.kind === 'lost-answer') stats.lostAnswers += 1;
    if (outcome.kind === 'timeout') stats.timeouts += 1;
  }
}

function statusOf(outcome: DeliveryOutcome): RpcStatus {
  switch (outcome.kind) {
    case 'response':
      return { code: rpcCodeForHttpStatus(outcome.status), message: `HTTP status ${outcome.status}` };
    case 'injected':
      return { code: status.UNAVAILABLE, message: 'HTTP status 503 (injected by the emulator, not sent)' };
    case 'timeout':
      return { code: status.DEADLINE_EXCEEDED, message: 'dispatch deadline exceeded' };
    case 'lost-answer':
      return {
        code: status.DEADLINE_EXCEEDED,
        message: `dispatch deadline exceeded (injected by the emulator: the target answered HTTP ${outcome.status}, the answer was lost)`,
      };
    case 'network-error':
      return { code: status.UNAVAILABLE, message: `request failed: ${outcome.message}` };
    case 'aborted':
      return { code: status.CANCELLED, message: 'emulator stopped' };
  }
}

function previousFailureOf(outcome: DeliveryOutcome, rpc: RpcStatus): PreviousFailure {
  switch (outcome.kind) {
    case 'response':
      return { httpStatus: outcome.status, reason: rpc.message };
    case 'injected':
      return { httpStatus: 503, reason: rpc.message };
    default:
      return { reason: rpc.message };
  }
}
