import { Key } from '../datastore';
import { decodeRange, encodeRange } from './job-layout';
import type { KeyRange } from './ranges';

/**
 * A point between keys: `at` is the place of the key itself, `after` the place just past it (and
 * past nothing else, since ranges only ever end at keys). `undefined` is the open end.
 */
interface Point {
  key: Key;
  after: boolean;
}

/** Keys k with lo <= k < hi, over points; an open lo or hi is unbounded. */
interface Span {
  lo?: Point;
  hi?: Point;
}

function compare(a: Point, b: Point): number {
  return Key.compare(a.key, b.key) || Number(a.after) - Number(b.after);
}
const loLess = (a: Span, b: Span) => (a.lo === undefined ? b.lo !== undefined : b.lo !== undefined && compare(a.lo, b.lo) < 0);
/** Whether span `b` starts at or before `a` ends (so the two touch or overlap). */
const reaches = (a: Span, b: Span) => a.hi === undefined || b.lo === undefined || compare(b.lo, a.hi) <= 0;
const maxHi = (a?: Point, b?: Point) => (a === undefined || b === undefined ? undefined : compare(a, b) >= 0 ? a : b);
const empty = (s: Span) => s.lo !== undefined && s.hi !== undefined && compare(s.lo, s.hi) >= 0;

function toSpan(range: KeyRange): Span {
  return {
    lo: range.start && { key: range.start, after: range.startExclusive === true },
    hi: range.end && { key: range.end, after: range.endInclusive === true },
  };
}

function toRange(namespace: string, span: Span): KeyRange {
  const range: KeyRange = { namespace, start: span.lo?.key, end: span.hi?.key };
  if (span.lo?.after) range.startExclusive = true;
  if (span.hi?.after) range.endInclusive = true;
  return range;
}

function normalise(spans: Span[]): Span[] {
  const sorted = spans.filter((s) => !empty(s)).sort((a, b) => (loLess(a, b) ? -1 : loLess(b, a) ? 1 : 0));
  const out: Span[] = [];
  for (const span of sorted) {
    const last = out[out.length - 1];
    if (last && reaches(last, span)) last.hi = maxHi(last.hi, span.hi);
    else out.push({ ...span });
  }
  return out;
}

/** `spans` without `cut` (both normalised). */
function minus(spans: readonly Span[], cut: readonly Span[]): Span[] {
  let rest = spans.map((s) => ({ ...s }));
  for (const c of cut) {
    const next: Span[] = [];
    for (const s of rest) {
      // The part of s before c, and the part after it.
      if (c.lo !== undefined) next.push({ lo: s.lo, hi: s.hi === undefined || compare(c.lo, s.hi) < 0 ? c.lo : s.hi });
      if (c.hi !== undefined) next.push({ lo: s.lo === undefined || compare(c.hi, s.lo) > 0 ? c.hi : s.lo, hi: s.hi });
    }
    rest = next.filter((s) => !empty(s));
  }
  return normalise(rest);
}

/**
 * A set of keys, as disjoint key ranges per namespace: what a job committed, and what an operation
 * has applied (src/migrations/coverage.ts). Union, difference and the complement within a list of
 * namespaces are all a reverse or a redo needs to touch exactly what ran.
 */
export class KeySet {
  private constructor(private readonly spans: ReadonlyMap<string, readonly Span[]>) {}

  static of(ranges: readonly KeyRange[]): KeySet {
    const by = new Map<string, Span[]>();
    for (const range of ranges) {
      const list = by.get(range.namespace) ?? [];
      list.push(toSpan(range));
      by.set(range.namespace, list);
    }
    return new KeySet(new Map([...by].map(([ns, spans]) => [ns, normalise(spans)])));
  }

  /** Every key of these namespaces. */
  static all(namespaces: readonly string[]): KeySet {
    return KeySet.of(namespaces.map((namespace) => ({ namespace })));
  }

  union(other: KeySet): KeySet {
    return KeySet.of([...this.ranges(), ...other.ranges()]);
  }

  minus(other: KeySet): KeySet {
    const out = new Map<string, Span[]>();
    for (const [ns, spans] of this.spans) out.set(ns, minus(spans, other.spans.get(ns) ?? []));
    return new KeySet(out);
  }

  /** The keys of these namespaces that are not in the set. */
  complementIn(namespaces: readonly string[]): KeySet {
    return KeySet.all(namespaces).minus(this);
  }

  get isEmpty(): boolean {
    return [...this.spans.values()].every((spans) => spans.length === 0);
  }

  ranges(): KeyRange[] {
    return [...this.spans].flatMap(([ns, spans]) => spans.map((s) => toRange(ns, s)));
  }

  toJSON(): unknown[] {
    return this.ranges().map(encodeRange);
  }

  static fromJSON(stored: readonly Parameters<typeof decodeRange>[0][]): KeySet {
    return KeySet.of(stored.map(decodeRange));
  }
}
