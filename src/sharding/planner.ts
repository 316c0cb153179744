import { Key, type Datastore, type PropertyFilter } from '../datastore';
import { DsMigrateError } from '../errors';
import type { KeyRange } from './ranges';
import { decodeRun, encodeRun, runKey, type PendingNamespace, type RunPlan } from './run-plan';
import { splitNamespace, type CutPage } from './splitter';

export interface PlanRequest {
  store: Datastore;
  runId: string;
  type: string;
  kind: string;
  /** The operation's fingerprint: a run id resumed with another operation is refused. */
  operation: string;
  /** The namespaces to split; a function is only called when there is no stored plan ('*' costs a query). */
  namespaces: readonly string[] | (() => Promise<readonly string[]>);
  filters: readonly PropertyFilter[];
  shardCount?: number;
}

/**
 * The run's plan as stored, or a new one: each namespace split by the splitter, or left pending to be
 * cut from its key stream. The first process to store a plan wins; every other one uses it, so an
 * operation that already has shard state is never split again.
 */
export async function ensurePlan(request: PlanRequest): Promise<RunPlan> {
  const { store, runId } = request;
  const existing = await store.get(runKey(runId));
  if (existing) return checked(decodeRun(existing), request);
  const plan = await newPlan(request);
  return store.transaction(async (tx) => {
    const raced = await tx.get(runKey(runId));
    if (raced) return checked(decodeRun(raced), request);
    tx.upsert(encodeRun(plan));
    return plan;
  });
}

/** Plans in memory only (dry runs write nothing). */
export async function newPlan(request: PlanRequest): Promise<RunPlan> {
  const shards: KeyRange[] = [];
  const pending: PendingNamespace[] = [];
  const namespaces = typeof request.namespaces === 'function' ? await request.namespaces() : request.namespaces;
  for (const namespace of namespaces) {
    const ranges = await splitNamespace(request.store, { kind: request.kind, namespace, filters: request.filters }, request.shardCount);
    if (ranges) shards.push(...ranges);
    else pending.push({ namespace });
  }
  return { runId: request.runId, type: request.type, kind: request.kind, operation: request.operation, shards, pending, createdAt: new Date() };
}

/**
 * Adds the shards cut from one page of a pending namespace's stream, unless another process already
 * cut that page (the stored cursor moved on). Returns the new shards' indexes, or undefined.
 */
export async function appendPage(store: Datastore, runId: string, namespace: string, cursor: Key | undefined, page: CutPage): Promise<number[] | undefined> {
  return store.transaction(async (tx) => {
    const entity = await tx.get(runKey(runId));
    if (!entity) throw new DsMigrateError('CONFLICT', `Operation run ${runId} lost its plan while being planned (was its state cleared?).`, { runId });
    const plan = decodeRun(entity);
    const entry = plan.pending.find((p) => p.namespace === namespace);
    if (!entry || !sameKey(entry.cursor, cursor)) return undefined;
    const first = plan.shards.length;
    plan.shards.push(...page.shards.map((s) => ({ ...s.range, expected: s.keys.length })));
    if (page.next) entry.cursor = page.next;
    else plan.pending = plan.pending.filter((p) => p !== entry);
    tx.upsert(encodeRun(plan));
    return page.shards.map((_, i) => first + i);
  });
}

export async function loadPlan(store: Datastore, runId: string): Promise<RunPlan | undefined> {
  const entity = await store.get(runKey(runId));
  return entity && decodeRun(entity);
}

function checked(plan: RunPlan, request: PlanRequest): RunPlan {
  if (plan.operation !== request.operation) {
    throw new DsMigrateError(
      'CONFLICT',
      `Operation run ${request.runId} was started as ${plan.operation}, not ${request.operation}. Clear its state (clearOperationState) to start it over.`,
      { runId: request.runId, kind: request.kind },
    );
  }
  return plan;
}

function sameKey(a: Key | undefined, b: Key | undefined): boolean {
  return a === undefined || b === undefined ? a === b : a.equals(b);
}
