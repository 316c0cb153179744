import { existsSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A deterministic point to interrupt a run at, for tests of crashes and lost leases (rather than
 * sleeps that race the run): with DSMIGRATE_TEST_PAUSE_AFTER_BATCHES=N and DSMIGRATE_TEST_PAUSE_FILE=path
 * in the environment, the process writes `path` once N batches have committed, and holds every
 * batch after that until the file is removed. Without them it costs one comparison per batch.
 */
const after = Number(process.env.DSMIGRATE_TEST_PAUSE_AFTER_BATCHES ?? Number.NaN);
const file = process.env.DSMIGRATE_TEST_PAUSE_FILE;
let committed = 0;

export async function afterCommittedBatch(): Promise<void> {
  if (!file || !(++committed >= after)) return;
  if (committed === after) writeFileSync(file, `paused after ${after} batches\n`);
  while (existsSync(file)) await sleep(50);
}

/**
 * A named point of a run to hold at, for tests of a run that loses its lease there: with
 * DSMIGRATE_TEST_PAUSE_AT=<point> and DSMIGRATE_TEST_PAUSE_FILE=path, the process writes `path` when
 * it reaches the point and waits there until the file is removed.
 */
export async function pauseAt(point: string): Promise<void> {
  if (!file || process.env.DSMIGRATE_TEST_PAUSE_AT !== point) return;
  writeFileSync(file, `paused at ${point}\n`);
  while (existsSync(file)) await sleep(50);
}
