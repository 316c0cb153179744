import { createHash } from 'node:crypto';
import type { TaskPayload } from './payload';

/**
 * A task's id: a hash of what the task does. Enqueuing the same step twice (a retried handler, a
 * duplicate delivery that continues a shard again) yields the same name, which Cloud Tasks refuses
 * with ALREADY_EXISTS for about an hour after the first ran: that refusal is the dedupe.
 *
 * The run id is part of it: a later run (say forward, back, forward again within the hour) does the
 * same migration, operation, shard and slice, and must not find its names taken. A hash rather than
 * readable ids also spreads names evenly, which Cloud Tasks recommends over sequential names.
 */
export function taskIdFor(payload: TaskPayload): string {
  const parts = [payload.ns, payload.run, payload.migration, String(payload.step), payload.type];
  if (payload.type === 'slice') parts.push(String(payload.shard), String(payload.slice));
  else parts.push(String(payload.page));
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 40);
}
