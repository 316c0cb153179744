import type { WrittenKey } from './commit-keys';

/** An entity the report names: written too often, or refused by the hot limit. */
export interface HotDocument extends WrittenKey {
  /** Written more than the rate a second, every second, over the window. */
  hot: boolean;
  /** Writes sent to the emulator since the proxy started. */
  writes: number;
  /** The most writes it received within one second (calendar second). */
  maxPerSecond: number;
  /** Writes the hot limit answered ABORTED instead of forwarding. */
  rejected: number;
}

interface Entry {
  key: WrittenKey;
  /** Writes per second, for the seconds of the window only. */
  perSecond: Map<number, number>;
  /** Times (ms) of the writes of the last second, kept only under a hot limit. */
  recent: number[];
  lastSecond: number;
  writes: number;
  maxPerSecond: number;
  rejected: number;
  hot: boolean;
}

export interface HotDocumentOptions {
  windowSeconds: number;
  ratePerSecond: number;
  /** Writes per second (sliding) above which a write is refused; undefined for none. */
  limit?: number;
}

const id = (key: WrittenKey) => JSON.stringify([key.projectId, key.databaseId, key.namespace, key.path]);

/**
 * Counts the writes each entity receives. Production sustains about one write a second to an entity (an
 * entity group on the classic backend); more, kept up, means contention: transactions abort and latency
 * grows. An entity is reported hot once, over `windowSeconds` consecutive seconds, it was written every
 * second and more than `ratePerSecond` times a second on average (a one-off burst is not reported).
 */
export class HotDocuments {
  private readonly entries = new Map<string, Entry>();
  private lastSweep = 0;

  constructor(private readonly options: HotDocumentOptions) {}

  /** The first of these keys written `limit` times within the last second, which makes the commit refused; undefined if none. */
  overLimit(keys: readonly WrittenKey[], now: number): WrittenKey | undefined {
    const limit = this.options.limit;
    if (limit === undefined) return undefined;
    for (const key of keys) {
      const entry = this.entries.get(id(key));
      if (entry && this.recentWrites(entry, now) >= limit) return key;
    }
    return undefined;
  }

  /** Counts a commit's keys as refused by the hot limit. */
  refuse(keys: readonly WrittenKey[], now: number): void {
    for (const key of keys) this.entry(key, now).rejected++;
  }

  /** Counts the writes of a commit sent to the emulator. */
  record(keys: readonly WrittenKey[], now: number): void {
    const second = Math.floor(now / 1000);
    for (const key of keys) {
      const entry = this.entry(key, now);
      const count = (entry.perSecond.get(second) ?? 0) + 1;
      entry.perSecond.set(second, count);
      entry.lastSecond = second;
      entry.writes++;
      entry.maxPerSecond = Math.max(entry.maxPerSecond, count);
      if (this.options.limit !== undefined) entry.recent.push(now);
      this.forgetOldSeconds(entry, second);
      entry.hot ||= this.sustained(entry, second);
    }
    if (now - this.lastSweep >= 1000) this.sweep(second, now);
  }

  report(): HotDocument[] {
    return [...this.entries.values()]
      .filter((entry) => entry.hot || entry.rejected > 0)
      .map(({ key, hot, writes, maxPerSecond, rejected }) => ({ ...key, hot, writes, maxPerSecond, rejected }))
      .sort((a, b) => b.writes - a.writes || a.path.localeCompare(b.path));
  }

  private entry(key: WrittenKey, now: number): Entry {
    const name = id(key);
    let entry = this.entries.get(name);
    if (!entry) {
      entry = { key, perSecond: new Map(), recent: [], lastSecond: Math.floor(now / 1000), writes: 0, maxPerSecond: 0, rejected: 0, hot: false };
      this.entries.set(name, entry);
    }
    return entry;
  }

  private recentWrites(entry: Entry, now: number): number {
    while (entry.recent.length > 0 && entry.recent[0] <= now - 1000) entry.recent.shift();
    return entry.recent.length;
  }

  private forgetOldSeconds(entry: Entry, second: number): void {
    for (const s of entry.perSecond.keys()) if (s <= second - this.options.windowSeconds) entry.perSecond.delete(s);
  }

  /** Written in each of the window's seconds up to this one, and more than the rate on average. */
  private sustained(entry: Entry, second: number): boolean {
    const { windowSeconds, ratePerSecond } = this.options;
    let total = 0;
    for (let s = second - windowSeconds + 1; s <= second; s++) {
      const count = entry.perSecond.get(s);
      if (!count) return false;
      total += count;
    }
    return total > windowSeconds * ratePerSecond;
  }

  /** Forgets entities neither reported nor written within the window: a long session writes millions of entities once. */
  private sweep(second: number, now: number): void {
    this.lastSweep = now;
    for (const [name, entry] of this.entries) {
      if (!entry.hot && entry.rejected === 0 && entry.lastSecond <= second - this.options.windowSeconds) this.entries.delete(name);
    }
  }
}
