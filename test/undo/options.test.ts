import { DeleteModelData, MapFunctionOnEntities, RemoveFieldData, backOutOf, canBackOut } from '../../src/operations';

describe('the undo option', () => {
  it.each([
    [{ undo: 'yes' }, /DeleteModelData on Audit: undo must be true, false or \{retain: '14d'\}, not "yes"/],
    [{ undo: { retain: '2 weeks' } }, /undo\.retain must be a whole number of days, hours, minutes or seconds such as '14d'.*not "2 weeks"/],
    [{ undo: { retain: '0d' } }, /undo\.retain must be/],
    [{ undo: { keep: '1d' } }, /undo must be true, false or \{retain: '14d'\}/],
  ])('refuses %j, naming the operation and the fix', (options, message) => {
    expect(() => new DeleteModelData('Audit', options as never)).toThrow(message);
  });

  it('makes an operation with no reverse of its own back out from its images, and leaves declared reverses alone', () => {
    expect(canBackOut(new DeleteModelData('Audit'))).toBe(false);
    expect(backOutOf(new DeleteModelData('Audit', { undo: true }), 0).type).toBe('RestoreBeforeImages');
    expect(backOutOf(new MapFunctionOnEntities('P', () => undefined, { undo: { retain: '12h' } }), 1).type).toBe('RestoreBeforeImages');
    expect(backOutOf(new RemoveFieldData('P', 'f', { undo: true, reverse: { default: 1 } }), 0).type).toBe('AddFieldData');
    expect(new DeleteModelData('Audit', { undo: true, reverse: 'noop' }).leavesDataOnBackOut).toBe(true);
  });

  it('is part of what the plan shows and of the fingerprint a job is laid out with, not of an operation without it', () => {
    const kept = new DeleteModelData('Audit', { undo: { retain: '14d' } });
    expect(kept.describe()).toBe('Delete every Audit entity (keeping before-images for 14d: one more write per changed entity, of its size before)');
    expect(JSON.parse(kept.fingerprint())).toMatchObject({ undo: '14d' });
    expect(JSON.parse(new DeleteModelData('Audit').fingerprint())).not.toHaveProperty('undo');
  });
});
