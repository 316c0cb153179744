import { DsMigrateError } from '../../errors';
import type { RunState } from '../../migrations';
import { rateProblem } from '../../sharding';

export type DispatchAuthSpec = { kind: 'hmac' } | { kind: 'oidc'; serviceAccountEmail: string; audience: string };

/** Where a Cloud Tasks run's tasks go, stored with the run (its `settings`) so that every worker continues it the same way; never a secret. */
export interface DispatchSpec {
  queue: string;
  url: string;
  auth: DispatchAuthSpec;
  dispatchDeadlineMs: number;
  sliceBudgetMs: number;
  /** A step failing this many times fails its migration (cloudTasks.maxStepAttempts). */
  maxStepAttempts: number;
  /** `migrate --max-rate`: entities per second over all the slices of a step whose operation sets no rate. */
  maxEntitiesPerSecond?: number;
}

export function encodeDispatch(spec: DispatchSpec): string {
  return JSON.stringify(spec);
}

function isAuth(a: unknown): a is DispatchAuthSpec {
  if (typeof a !== 'object' || a === null) return false;
  const auth = a as Record<string, unknown>;
  return auth.kind === 'hmac' || (auth.kind === 'oidc' && typeof auth.serviceAccountEmail === 'string' && typeof auth.audience === 'string');
}

/** The run's dispatch settings, decoded as strictly as a task payload. */
export function dispatchOf(run: Pick<RunState, 'id' | 'settings'>): DispatchSpec {
  const bad = (what: string) =>
    new DsMigrateError('DATASTORE', `Run ${run.id} has no usable Cloud Tasks settings: ${what}. It was not started by \`migrate --executor cloud-tasks\` of this version.`, { run: run.id });
  if (run.settings === null) throw bad('it has none');
  let d: Record<string, unknown>;
  try {
    d = JSON.parse(run.settings) as Record<string, unknown>;
  } catch {
    throw bad('they are not JSON');
  }
  const valid =
    typeof d === 'object' &&
    d !== null &&
    typeof d.queue === 'string' &&
    typeof d.url === 'string' &&
    isAuth(d.auth) &&
    [d.dispatchDeadlineMs, d.sliceBudgetMs, d.maxStepAttempts].every((n) => typeof n === 'number' && n > 0) &&
    (d.maxEntitiesPerSecond === undefined || rateProblem(d.maxEntitiesPerSecond, 'maxEntitiesPerSecond') === undefined);
  if (!valid) throw bad('they have an unexpected shape');
  return d as unknown as DispatchSpec;
}
