import type { RpcEvent } from '../../src/datastore';
import { LocalExecutor } from '../../src/executors';
import { AddFieldData, CopyModelData, MapFunctionOnEntities } from '../../src/operations';
import { controlEntities, readKind, seedMixed } from '../operations/dataset';
import { describeEachFlavour } from '../support/emulators';

describeEachFlavour('dry runs', (ctx) => {
  it('run the per-entity logic, count, sample, and write nothing at all', async () => {
    const events: RpcEvent[] = [];
    const store = await ctx.connect({ onRpc: (e) => events.push(e) });
    await seedMixed(store, 'Dry', { '': 300, 'tenant-b': 100 });
    const before = (await readKind(store, 'Dry')).map((e) => e.toObject());
    events.length = 0;

    const executor = new LocalExecutor();
    const added = await executor.runOperation({
      store,
      job: { namespace: '', id: 'dry#1' },
      dryRun: true,
      operation: new AddFieldData('Dry', 'colour', { default: 'blue', namespace: ['', 'tenant-b'] }),
    });
    expect(added).toMatchObject({ scanned: 400, changed: 360, skipped: 40 });
    expect(added.samples).toHaveLength(5);
    for (const sample of added.samples!) {
      expect(sample.before).not.toHaveProperty('colour');
      expect(sample.after).toMatchObject({ ...sample.before, colour: 'blue' });
    }
    const mapped = await executor.runOperation({
      store,
      job: { namespace: '', id: 'dry#2' },
      dryRun: true,
      operation: new MapFunctionOnEntities('Dry', (e) => ((e.get('n') as number) < 3 ? null : undefined)),
    });
    expect(mapped).toMatchObject({ scanned: 300, deleted: 3, skipped: 297 });
    expect(mapped.samples!.map((s) => s.after)).toEqual([null, null, null]);
    const copied = await executor.runOperation({ store, job: { namespace: '', id: 'dry#3' }, dryRun: true, operation: new CopyModelData('Dry', 'DryCopy') });
    expect(copied.changed).toBe(300);

    for (const method of ['commit', 'beginTransaction', 'reserveIds', 'allocateIds']) expect(events.filter((e) => e.method === method)).toEqual([]);
    expect((await readKind(store, 'Dry')).map((e) => e.toObject())).toEqual(before);
    expect(await controlEntities(store)).toBe(0);
  });
});
