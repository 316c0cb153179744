import { DsMigrateError } from '../errors';
import type { OperationRecord, Recorder } from '../migrations';
import type { OperationTotals } from './engine';
import type { MigrationStep } from './operations';
import type { RunState } from './run-state';

/** An operation's counts as its record keeps them. */
export function countsOf(t: OperationTotals): Omit<OperationRecord, 'type' | 'kind' | 'done'> {
  return { scanned: t.scanned, changed: t.changed, deleted: t.deleted, skipped: t.skipped, failed: t.failed, shardsDone: t.shardsDone, shardsTotal: t.shardsTotal };
}

/** Records the finished operation and moves the run to the next one, or past the migration. Inside the transition's transaction. */
export async function advance(run: RunState, step: MigrationStep, recorder: Recorder, totals: OperationTotals | undefined): Promise<void> {
  const id = step.migration.id;
  const record = await recorder.get(id);
  if (!record) throw new DsMigrateError('CONFLICT', `The record of migration ${id} disappeared while run ${run.id} was applying it.`, { migration: id });
  if (totals && run.op < step.operations.length) {
    record.operations[run.op] = { ...record.operations[run.op], ...countsOf(totals), done: true };
    record.operationsDone = run.op + 1;
  }
  run.shards = null;
  if (run.op + 1 < step.operations.length) {
    run.op += 1;
    await recorder.save(record);
    return;
  }
  if (run.direction === 'forward') await recorder.save({ ...record, state: 'applied', finishedAt: new Date() });
  else await recorder.remove(id);
  run.current += 1;
  run.op = 0;
  if (run.current >= run.migrations.length) {
    run.status = 'done';
    run.finishedAt = new Date();
  }
}
