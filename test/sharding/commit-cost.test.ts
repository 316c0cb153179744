import { Entity, Key, MAX_KEY_BYTES } from '../../src/datastore';
import { uniqueValueOf, type UniqueFields } from '../../src/model';
import { applyBatch, batchLength, type EntityDecision, type ShardWork } from '../../src/sharding';
import { storedBytes } from '../../src/sharding/entity-size';
import { shardWork } from '../support/shard-work';

const unique: UniqueFields = { kind: 'P', fields: ['email'], valueOf: (entity, field) => uniqueValueOf('P', field, entity, entity.has(field) ? field : undefined) };

const work = (apply: (entity: Entity) => EntityDecision, related?: (k: Key) => Key[]): ShardWork => shardWork(apply, related, { uniqueFields: (kind) => (kind === 'P' ? unique : undefined) });

const keys = Array.from({ length: 10 }, (_, i) => Key.of('Club', 'c', 'P', i + 1));
const found = () => new Map(keys.map((k) => [k.toString(), Entity.from(k, { email: `old${k.id}@x.org` })]));
const changeEmail = (e: Entity): EntityDecision => {
  e.set('email', `new${e.key.id}@x.org`);
  return { action: 'put', entity: e };
};

describe('a batch decided in its transaction', () => {
  it('takes the keys whose writes, unique markers included, fit in the commit, and leaves the rest wholly undone', async () => {
    // Each entity: itself, its new value's marker claimed, its old value's dropped.
    const applied = await applyBatch(work(changeEmail), keys, found(), { byteBudget: Infinity, mutationBudget: 10, dryRun: false });
    expect(applied.consumed).toBe(3);
    expect(applied.puts.map((e) => e.key.id)).toEqual(['1', '2', '3']);
    expect(applied.delta).toMatchObject({ scanned: 3, changed: 3 });
    expect(applied.cost.mutations).toBe(9);
    // The markers count against the bytes too.
    const bytes = (await applyBatch(work(changeEmail), keys, found(), { byteBudget: Infinity, dryRun: false })).cost.bytes;
    const sized = await applyBatch(work(changeEmail), keys, found(), { byteBudget: bytes / 2, dryRun: false });
    expect(sized.consumed).toBe(5);
    expect(sized.cost.bytes).toBeLessThanOrEqual(bytes / 2);
  });

  it('counts a deletion with the marker it drops, and markers alone for BuildUniqueMarkers', async () => {
    const deleted = await applyBatch(
      work((e) => ({ action: 'delete', key: e.key })),
      keys,
      found(),
      { byteBudget: Infinity, mutationBudget: 499, dryRun: false },
    );
    expect(deleted.cost.mutations).toBe(20);
    const claimed = await applyBatch(
      work((e) => ({ action: 'markers', entity: e, claim: true })),
      keys,
      found(),
      { byteBudget: Infinity, mutationBudget: 4, dryRun: false },
    );
    expect(claimed.consumed).toBe(4);
    expect(claimed.markers).toHaveLength(4);
  });

  it('counts a marker per unique field for an entity written without being read, as its old values are unknown', async () => {
    const elsewhere = (e: Entity): EntityDecision => ({ action: 'put', entity: Entity.from(Key.of('P', `copy-${e.key.id}`), { email: `c${e.key.id}@x.org` }) });
    const applied = await applyBatch(work(elsewhere), keys, found(), { byteBudget: Infinity, mutationBudget: 499, dryRun: false });
    expect(applied.cost.mutations).toBe(30);
    expect(applied.cost.bytes).toBeGreaterThan(10 * MAX_KEY_BYTES);
    // Read as a related key: known, and with nothing to drop.
    const read = await applyBatch(
      work(elsewhere, (k) => [Key.of('P', `copy-${k.id}`)]),
      keys,
      found(),
      { byteBudget: Infinity, mutationBudget: 499, dryRun: false },
    );
    expect(read.cost.mutations).toBe(20);
  });

  it('counts the entity groups the writes add to those read, where the backend limits them; takes one key even if it alone is over, so that a shard cannot stall', async () => {
    // One group read (Club c) and the checkpoint's; each new marker is a root of its own.
    const read = new Set([keys[0].root.toString(), 'checkpoint']);
    const applied = await applyBatch(work(changeEmail), keys, found(), { byteBudget: Infinity, groups: { limit: 8, read }, dryRun: false });
    expect(applied.consumed).toBe(3);
    expect(applied.cost.groups).toBe(6);
    const alone = await applyBatch(work(changeEmail), keys, found(), { byteBudget: Infinity, groups: { limit: 2, read }, dryRun: false });
    expect([alone.consumed, alone.cost.groups]).toEqual([1, 2]);
  });
});

describe('the next batch', () => {
  const plain: ShardWork = { ...work(changeEmail), uniqueFields: undefined };
  const roots = Array.from({ length: 1000 }, (_, i) => Key.of('P', i + 1));
  const budget = { mutations: 499, bytes: 2_800_000 };

  it('takes as many keys as the commit holds at what a key cost the last one', () => {
    expect(batchLength(roots, plain, 400, null, { perKey: { mutations: 2, bytes: 100, groups: 0 }, budget })).toBe(249);
    expect(batchLength(roots, plain, 400, null, { perKey: { mutations: 3, bytes: 100, groups: 0 }, budget })).toBe(166);
    expect(batchLength(roots, plain, 400, null, { perKey: { mutations: 1, bytes: 200_000, groups: 0 }, budget })).toBe(14);
    expect(batchLength(roots, plain, 400, null, { perKey: { mutations: 0, bytes: 0, groups: 0 }, budget })).toBe(400);
    expect(batchLength(roots, plain, 400, null, { perKey: { mutations: 1, bytes: 5_000_000, groups: 0 }, budget })).toBe(1);
  });

  it('counts the groups a key added to the commit (its markers) within the entity-group limit', () => {
    const perKey = { mutations: 2, bytes: 100, groups: 1 };
    expect(batchLength(roots, plain, 400, 25, { perKey, budget })).toBe(12);
    const children = Array.from({ length: 300 }, (_, i) => Key.of('Org', 1, 'P', i + 1));
    expect(batchLength(children, plain, 400, 25, { perKey, budget })).toBe(23);
  });
});

describe('an entity’s size against the limit per entity', () => {
  it('is counted as Datastore documents its storage size', () => {
    // Keys of the documentation's examples (29, 32, 46 and 60 bytes), with no properties and the entity's 32 bytes.
    expect(storedBytes(Entity.from(Key.of('Task', 5730082031140864n), {}))).toBe(29 + 32);
    expect(storedBytes(Entity.from(Key.of('Task', 'my_task_id'), {}))).toBe(32 + 32);
    expect(storedBytes(Entity.from(Key.of('TaskList', 5654313976201216n, 'Task', 5629499534213120n), {}))).toBe(46 + 32);
    expect(storedBytes(Entity.from(Key.of('TaskList', 5654313976201216n, 'Task', 5629499534213120n, { namespace: 'my_name_space' }), {}))).toBe(60 + 32);
    // The documentation's Task: 29 + 14 + 6 + 17 + 34 + 32.
    expect(storedBytes(Entity.from(Key.of('Task', 5730082031140864n), { type: 'Personal', done: false, priority: 1, description: 'Learn Cloud Datastore' }))).toBe(132);
    expect(storedBytes(Entity.from(Key.of('T', 'x'), { blob: Buffer.alloc(1000), list: [1, 'ab', null], at: new Date(0), ref: Key.of('R', 1) }))).toBe(
      16 + 2 + 2 + 32 + (5 + 1000) + (5 + 8 + 3 + 1) + (3 + 8) + (4 + 16 + 2 + 8),
    );
  });
});
