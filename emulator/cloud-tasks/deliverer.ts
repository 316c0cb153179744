import { sendHttp, type HttpOutcome } from './http-send';
import type { OutgoingRequest } from './outgoing-request';

export type DeliveryOutcome = HttpOutcome | { kind: 'injected' } | { kind: 'lost-answer'; status: number };

/** A fault to inject into one delivery: none, a failure without sending, or losing a 2xx answer. */
export type DeliveryFault = 'none' | 'fail' | 'lose-answer';

/**
 * Performs deliveries: the configured latency, then either an injected failure or the real HTTP
 * request, whose 2xx answer may then be lost. Keeps every delivery abortable so that stop() leaves
 * nothing running.
 */
export class Deliverer {
  private readonly controllers = new Set<AbortController>();

  constructor(private readonly latencyMs: () => number) {}

  async deliver(request: OutgoingRequest, deadlineMs: number, fault: DeliveryFault): Promise<DeliveryOutcome> {
    const controller = new AbortController();
    this.controllers.add(controller);
    try {
      const latency = this.latencyMs();
      if (latency > 0 && !(await sleep(latency, controller.signal))) return { kind: 'aborted' };
      if (controller.signal.aborted) return { kind: 'aborted' };
      if (fault === 'fail') return { kind: 'injected' };
      const outcome = await sendHttp(request, deadlineMs, controller.signal);
      // The target did the work, but the queue never hears so, as when the answer is lost on its way back.
      if (fault === 'lose-answer' && outcome.kind === 'response' && outcome.status >= 200 && outcome.status < 300) {
        return { kind: 'lost-answer', status: outcome.status };
      }
      return outcome;
    } finally {
      this.controllers.delete(controller);
    }
  }

  abortAll(): void {
    for (const controller of this.controllers) controller.abort();
  }
}

/** Resolves true after `ms`, or false as soon as `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
