import { Entity, Key } from '../../src/datastore';
import { batchLength, cutPage, inRange, matchesFilters, pickSplitPoints, rangesBetween, type ShardWork } from '../../src/sharding';
import { shardWork } from '../support/shard-work';

/** Integer ids, names, ancestors and a second kind's children: Datastore order mixes them all. */
function mixedKeys(): Key[] {
  const keys: Key[] = [];
  for (let i = 1; i <= 50; i++) keys.push(Key.of('P', i));
  for (let i = 0; i < 50; i++) keys.push(Key.of('P', `name-${String(i).padStart(3, '0')}`));
  for (let i = 1; i <= 25; i++) keys.push(Key.of('Org', 'acme', 'P', i), Key.of('Org', 7, 'Team', 't', 'P', `c${i}`));
  return keys;
}

function shuffle<T>(items: T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = (i * 7919) % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

describe('split points', () => {
  it('are sorted, distinct and evenly spaced in Datastore key order, for mixed ids, names and ancestors', () => {
    const keys = mixedKeys();
    const sorted = [...keys].sort(Key.compare);
    // Datastore order: kind Org (ancestors) before P; within P ids before names.
    expect(sorted[0].toString()).toBe('Org:7/Team:"t"/P:"c1"');
    expect(sorted.findIndex((k) => k.path.length === 1 && k.id !== undefined)).toBeLessThan(sorted.findIndex((k) => k.path.length === 1 && k.name !== undefined));

    const points = pickSplitPoints(shuffle(keys), 4);
    expect(points).toHaveLength(3);
    for (let i = 1; i < points.length; i++) expect(Key.compare(points[i - 1], points[i])).toBeLessThan(0);
    const ranges = rangesBetween('', points);
    const sizes = ranges.map((r) => keys.filter((k) => inRange(r, k)).length);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(keys.length); // every key in exactly one shard
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
  });

  it('leave the first and last shards open, so keys outside the sample are covered', () => {
    const sample = [Key.of('P', 100), Key.of('P', 200), Key.of('P', 300), Key.of('P', 400)];
    const ranges = rangesBetween('ns', pickSplitPoints(sample, 2));
    expect(ranges).toHaveLength(2);
    expect(ranges[0].start).toBeUndefined();
    expect(ranges[1].end).toBeUndefined();
    expect(inRange(ranges[0], Key.of('P', 1))).toBe(true); // below every sampled key
    expect(inRange(ranges[1], Key.of('P', 'zzz'))).toBe(true); // names sort after every id
  });

  it('never repeat a point or split at the lowest key, even from a tiny or repetitive sample', () => {
    expect(pickSplitPoints([], 8)).toEqual([]);
    expect(pickSplitPoints([Key.of('P', 1)], 8)).toEqual([]);
    const same = Array.from({ length: 10 }, () => Key.of('P', 5));
    expect(pickSplitPoints(same, 4)).toHaveLength(1);
    expect(rangesBetween('', pickSplitPoints([Key.of('P', 1), Key.of('P', 2)], 8))).toHaveLength(2);
  });

  it('cut a streamed page into balanced, contiguous shards bounded by the next page', () => {
    const keys = Array.from({ length: 10_001 }, (_, i) => Key.of('P', i + 1));
    const next = Key.of('P', 20_000);
    const shards = cutPage('', keys, undefined, next);
    expect(shards).toHaveLength(4);
    expect(shards[0].range.start).toBeUndefined();
    expect(shards[3].range.end).toBe(next);
    for (let i = 1; i < shards.length; i++) expect(shards[i].range.start).toBe(shards[i - 1].range.end);
    const sizes = shards.map((s) => s.keys.length);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    for (const s of shards) expect([...s.keys].every((k) => inRange(s.range, k))).toBe(true);
    // An empty kind still gets one shard, open at both ends.
    expect(cutPage('', [], undefined, undefined).map((s) => ({ ...s, keys: [...s.keys] }))).toEqual([{ range: { namespace: '', start: undefined, end: undefined }, keys: [] }]);
  });

  it('cut a page for a process that runs shards a few at a time into whole rounds of them, none of a handful of keys', () => {
    const keys = (n: number) => Array.from({ length: n }, (_, i) => Key.of('P', i + 1));
    const page = keys(100_000);
    const count = (n: number, slots?: number) => cutPage('', page.slice(0, n), undefined, undefined, n, slots).length;
    // Twenty shards eight at a time leave the third round half empty; sixteen fill two.
    expect(count(100_000)).toBe(20);
    expect(count(100_000, 8)).toBe(16);
    expect(count(50_000, 8)).toBe(16);
    expect(count(20_000, 8)).toBe(8);
    expect(count(100_000, 4)).toBe(20);
    expect(count(100_000, 3)).toBe(18);
    expect(count(100_000, 32)).toBe(32);
    // Small kinds: no shard of fewer than 500 keys, where a round would need more.
    expect(count(3_000, 8)).toBe(6);
    expect(count(100, 8)).toBe(1);
    expect(count(100_000, 1)).toBe(20);
    const shards = cutPage('', page, undefined, undefined, page.length, 8);
    expect(shards.reduce((n, s) => n + s.keys.length, 0)).toBe(100_000);
    for (let i = 1; i < shards.length; i++) expect(shards[i].range.start).toBe(shards[i - 1].range.end);
  });
});

describe('batches', () => {
  const work = (related?: (k: Key) => Key[]): ShardWork => shardWork(undefined, related);

  it('take batchSize keys where the backend has no entity-group limit', () => {
    const keys = Array.from({ length: 1000 }, (_, i) => Key.of('P', i + 1));
    expect(batchLength(keys, work(), 400, null)).toBe(400);
    expect(batchLength(keys.slice(0, 10), work(), 400, undefined)).toBe(10);
  });

  it('hold at most 24 root entities besides the checkpoint under the 25-group limit', () => {
    const roots = Array.from({ length: 100 }, (_, i) => Key.of('P', i + 1));
    expect(batchLength(roots, work(), 400, 25)).toBe(24);
    // Children of one root are one group.
    const children = Array.from({ length: 300 }, (_, i) => Key.of('Org', Math.floor(i / 100) + 1, 'P', i + 1));
    expect(batchLength(children, work(), 400, 25)).toBe(300);
  });

  it("leave room for each key's unique markers before a commit has shown what a key writes", () => {
    // Read, 300 children are one group; each marker is a root of its own.
    const children = Array.from({ length: 300 }, (_, i) => Key.of('Org', 1, 'P', i + 1));
    const unique = { kind: 'P', fields: ['email'], valueOf: () => undefined };
    expect(batchLength(children, shardWork(undefined, undefined, { uniqueFields: () => unique }), 400, 25)).toBe(23);
    expect(batchLength(children, shardWork(undefined, undefined, { uniqueFields: () => ({ ...unique, fields: ['email', 'code'] }) }), 400, 25)).toBe(11);
    // What the last commit taught wins.
    const learned = { perKey: { mutations: 1, bytes: 10, groups: 0 }, budget: { mutations: 499, bytes: 1e6 } };
    expect(batchLength(children, shardWork(undefined, undefined, { uniqueFields: () => unique }), 400, 25, learned)).toBe(300);
  });

  it('count the groups of related keys (a copy into another namespace) too', () => {
    const roots = Array.from({ length: 100 }, (_, i) => Key.of('P', i + 1));
    expect(
      batchLength(
        roots,
        work((k) => [k.withNamespace('other')]),
        400,
        25,
      ),
    ).toBe(12);
    expect(
      batchLength(
        roots,
        work((k) => [k.withKind('Q')]),
        400,
        25,
      ),
    ).toBe(12);
    expect(batchLength(roots, work(), 400, 1)).toBe(1); // never stalls
  });
});

describe('filters re-checked on the entity', () => {
  const entity = Entity.from(Key.of('P', 1), { status: 'active', age: 30, tags: ['a', 'b'], note: 'x' }, { excludeFromIndexes: ['note'] });

  it('match as Datastore does: equality, ranges, arrays by element, unindexed never', () => {
    expect(matchesFilters(entity, [{ property: 'status', op: '=', value: 'active' }])).toBe(true);
    expect(matchesFilters(entity, [{ property: 'status', op: '=', value: 'gone' }])).toBe(false);
    expect(
      matchesFilters(entity, [
        { property: 'age', op: '>=', value: 30 },
        { property: 'age', op: '<', value: 31 },
      ]),
    ).toBe(true);
    expect(matchesFilters(entity, [{ property: 'age', op: '>', value: 'text' }])).toBe(false);
    expect(matchesFilters(entity, [{ property: 'tags', op: '=', value: 'b' }])).toBe(true);
    expect(matchesFilters(entity, [{ property: 'status', op: 'IN', value: ['x', 'active'] }])).toBe(true);
    expect(matchesFilters(entity, [{ property: 'status', op: 'NOT_IN', value: ['active'] }])).toBe(false);
    expect(matchesFilters(entity, [{ property: 'note', op: '=', value: 'x' }])).toBe(false);
    expect(matchesFilters(entity, [{ property: 'missing', op: '!=', value: 1 }])).toBe(false);
  });
});
