import { Key } from '../../src/datastore';
import { loadManifest, saveManifests, clearJobState, type JobLayout } from '../../src/sharding';
import { encodeLayout } from '../../src/sharding/job-layout';
import { singleFlavour } from '../worker/support/harness';

const keys = Array.from({ length: 300 }, (_, i) => (i % 2 ? Key.of('Item', i + 1) : Key.of('Parent', 'p', 'Item', `n${i}`)));
const job = { namespace: 'control', id: 'default:0001_x#0.0' };
const plan = (createdAt: Date, end?: Key): JobLayout => ({
  job,
  type: 'AddFieldData',
  kind: 'Item',
  operation: '{}',
  shards: [{ namespace: '', start: undefined, end }],
  pending: [],
  createdAt,
});

test('a shard reads back the keys it was cut with, only for the same plan and range', async () => {
  const store = await singleFlavour('firestore', 'manifest').connect();
  try {
    const createdAt = new Date('2026-01-02T03:04:05.678Z');
    const end = Key.of('Item', 1000);
    await saveManifests(store, plan(createdAt, end), [{ index: 0, range: { namespace: '', end }, keys }]);
    const loaded = await loadManifest(store, plan(createdAt, end), 0);
    expect(loaded?.map(String)).toEqual(keys.map(String));
    // Another plan for the same run id (cleared and planned again), or another range: not these keys.
    expect(await loadManifest(store, plan(new Date(createdAt.getTime() + 1), end), 0)).toBeUndefined();
    expect(await loadManifest(store, plan(createdAt, Key.of('Item', 999)), 0)).toBeUndefined();
    expect(await loadManifest(store, plan(createdAt, end), 1)).toBeUndefined();
    await store.save([encodeLayout(plan(createdAt, end))]);
    await clearJobState(store, job);
    expect(await loadManifest(store, plan(createdAt, end), 0)).toBeUndefined();
  } finally {
    await store.close();
  }
});
