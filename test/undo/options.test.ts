import { stepOf, type RunState } from '../../src/migrations';
import { decodeRunState, encodeRunState } from '../../src/migrations/run-state';
import { DeleteModelData, MapFunctionOnEntities, RemoveFieldData, RestoreBeforeImages, backOutOf, canBackOut, checkUndoConflicts } from '../../src/operations';

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
    expect(backOutOf(new DeleteModelData('Audit', { undo: true }), 0, 'refuse').type).toBe('RestoreBeforeImages');
    expect(backOutOf(new MapFunctionOnEntities('P', () => undefined, { undo: { retain: '12h' } }), 1, 'refuse').type).toBe('RestoreBeforeImages');
    expect(backOutOf(new RemoveFieldData('P', 'f', { undo: true, reverse: { default: 1 } }), 0, 'refuse').type).toBe('AddFieldData');
    expect(new DeleteModelData('Audit', { undo: true, reverse: 'noop' }).leavesDataOnBackOut).toBe(true);
  });

  it('is part of what the plan shows and of the fingerprint a job is laid out with, not of an operation without it', () => {
    const kept = new DeleteModelData('Audit', { undo: { retain: '14d' } });
    expect(kept.describe()).toBe('Delete every Audit entity (keeping before-images for 14d: one more write per changed entity, of its size before)');
    expect(JSON.parse(kept.fingerprint())).toMatchObject({ undo: '14d' });
    expect(JSON.parse(new DeleteModelData('Audit').fingerprint())).not.toHaveProperty('undo');
  });

  it('gives a back-out the conflict policy the run carries, and leaves it out of the fingerprint', () => {
    const source = new DeleteModelData('Audit', { undo: true });
    const skip = stepOf(source, 0, 'reverse', 'skip').operation;
    expect(skip).toBeInstanceOf(RestoreBeforeImages);
    expect((skip as RestoreBeforeImages).conflicts).toBe('skip');
    expect(skip.fingerprint()).toBe(stepOf(source, 0, 'reverse', 'refuse').operation.fingerprint());
  });
});

describe('the conflict policy stored with a run', () => {
  const state: RunState = {
    id: 'run-1',
    namespace: 'ctl',
    driver: 'cloud-tasks',
    owner: 'run:run-1',
    status: 'running',
    direction: 'reverse',
    migrations: [],
    current: 0,
    step: 0,
    started: -1,
    job: null,
    stepStartedAt: null,
    shards: null,
    page: 0,
    settings: null,
    undoConflicts: 'overwrite',
    leaseTtlMs: 60_000,
    command: 'migrate zero',
    createdAt: new Date(0),
  };

  it('is decoded as stored', () => {
    expect(decodeRunState(encodeRunState(state)).undoConflicts).toBe('overwrite');
  });

  it('is refuse for a run stored before it was carried', () => {
    const older = encodeRunState(state);
    older.delete('undoConflicts');
    expect(decodeRunState(older).undoConflicts).toBe('refuse');
  });

  it('refuses a policy it does not know', () => {
    const entity = encodeRunState(state);
    entity.set('undoConflicts', 'merge');
    expect(() => decodeRunState(entity)).toThrow(/undoConflicts "merge" is unknown/);
  });
});

describe('checkUndoConflicts', () => {
  it('refuses a policy a caller misspelled, naming the choices', () => {
    expect(() => checkUndoConflicts('merge')).toThrow(/--undo-conflicts must be one of refuse, overwrite, skip, not "merge"/);
    expect(checkUndoConflicts('skip')).toBe('skip');
  });
});
