import type { DatastoreMethod, FaultCode } from './options';

/** What `--hot-limit` answers, counted beside the drawn faults: an ABORTED for contention on a hot entity. */
export type InjectedCode = FaultCode | 'hot-limit';

/** The RPCs the proxy saw and the faults it answered, per method: what it prints on exit. */
export interface ProxyCounts {
  /** RPCs received, per method (faulted ones included). */
  rpcs: Partial<Record<DatastoreMethod, number>>;
  /** Faults answered, per method and code. An after-commit fault is counted only when the commit was applied. */
  injected: Partial<Record<DatastoreMethod, Partial<Record<InjectedCode, number>>>>;
  /** All faults answered. */
  totalInjected: number;
}

export class Counter {
  private readonly counts: ProxyCounts = { rpcs: {}, injected: {}, totalInjected: 0 };

  received(method: DatastoreMethod): void {
    this.counts.rpcs[method] = (this.counts.rpcs[method] ?? 0) + 1;
  }

  injected(method: DatastoreMethod, code: InjectedCode): void {
    const perCode = (this.counts.injected[method] ??= {});
    perCode[code] = (perCode[code] ?? 0) + 1;
    this.counts.totalInjected++;
  }

  /** A copy, safe to keep while the proxy counts on. */
  snapshot(): ProxyCounts {
    return structuredClone(this.counts);
  }
}
