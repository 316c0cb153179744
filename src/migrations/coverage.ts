import { KeySet, type KeyRange } from '../sharding';

/** 'forward' applies a migration, 'reverse' unapplies it. */
export type Direction = 'forward' | 'reverse';

export type StoredCoverage = { all: true } | { none: true } | { ranges: unknown[] };

/**
 * Where an operation is in effect: nowhere, everywhere in its scope, or over the key ranges that its
 * jobs committed. A forward job adds what it commits, a reverse job takes it away; each new job covers
 * exactly what is left to do in its direction. So backing out of a half-run operation undoes only
 * its committed ranges, and a forward run after an interrupted back-out redoes only what was undone.
 */
export class Coverage {
  private constructor(
    private readonly state: 'none' | 'all' | 'some',
    private readonly keys?: KeySet,
  ) {}

  static none(): Coverage {
    return new Coverage('none');
  }

  static all(): Coverage {
    return new Coverage('all');
  }

  private static some(keys: KeySet): Coverage {
    return keys.isEmpty ? Coverage.none() : new Coverage('some', keys);
  }

  get isAll(): boolean {
    return this.state === 'all';
  }

  get isNone(): boolean {
    return this.state === 'none';
  }

  /**
   * What a job in this direction must cover: `undefined` for the operation's whole scope, else these
   * ranges (possibly none: nothing to do). `namespaces` is the operation's scope, resolved.
   */
  todo(direction: Direction, namespaces: readonly string[]): KeyRange[] | undefined {
    if (direction === 'forward') {
      if (this.state === 'none') return undefined;
      return this.state === 'all' ? [] : this.keys!.complementIn(namespaces).ranges();
    }
    if (this.state === 'all') return undefined;
    return this.state === 'none' ? [] : this.keys!.ranges();
  }

  /** After a job in `direction` committed `committed` and stopped (its shards closed). */
  fold(direction: Direction, committed: readonly KeyRange[], namespaces: readonly string[]): Coverage {
    const done = KeySet.of(committed);
    if (direction === 'forward') {
      if (this.state === 'all') return this;
      return Coverage.some(this.state === 'none' ? done : this.keys!.union(done));
    }
    if (this.state === 'none') return this;
    return Coverage.some((this.state === 'all' ? KeySet.all(namespaces) : this.keys!).minus(done));
  }

  toJSON(): StoredCoverage {
    if (this.state === 'all') return { all: true };
    if (this.state === 'none') return { none: true };
    return { ranges: this.keys!.toJSON() };
  }

  static isStored(x: unknown): x is StoredCoverage {
    if (typeof x !== 'object' || x === null) return false;
    const c = x as Record<string, unknown>;
    return c.all === true || c.none === true || (Array.isArray(c.ranges) && c.ranges.every((r) => typeof r === 'object' && r !== null && typeof (r as { ns?: unknown }).ns === 'string'));
  }

  static fromJSON(stored: StoredCoverage): Coverage {
    if ('all' in stored) return Coverage.all();
    if ('none' in stored) return Coverage.none();
    return Coverage.some(KeySet.fromJSON(stored.ranges as Parameters<typeof KeySet.fromJSON>[0]));
  }
}
