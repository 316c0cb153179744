import { jobKey, type JobRef } from '../control';
import { Key, type Datastore, type PropertyFilter } from '../datastore';
import { DsMigrateError } from '../errors';
import type { KeyRange } from './ranges';
import { decodeLayout, encodeLayout, isLive, type PendingNamespace, type JobLayout } from './job-layout';
import { splitNamespace, type CutPage } from './splitter';

export interface LayoutRequest {
  store: Datastore;
  job: JobRef;
  type: string;
  kind: string;
  /** The operation's fingerprint: a job resumed with another operation is refused. */
  operation: string;
  /** The namespaces to split; a function is only called when there is no stored layout ('*' costs a query). */
  namespaces: readonly string[] | (() => Promise<readonly string[]>);
  filters: readonly PropertyFilter[];
  shardCount?: number;
  /**
   * Only these ranges, one shard each, rather than the whole kind: a job that must undo (or redo)
   * exactly what another job of the operation committed (see src/migrations/coverage.ts).
   */
  bounds?: readonly KeyRange[];
  /** Whether a rate without `rampUp` ramps up; asked only when a new layout is made, and stored with it. */
  rampsByDefault?: () => Promise<boolean>;
}

/**
 * The job's layout as stored, or a new one: each namespace split by the splitter, or left pending to be
 * cut from its key stream. The first process to store a layout wins; every other one uses it, so a
 * job that already has shard state is never split again.
 */
export async function ensureLayout(request: LayoutRequest): Promise<JobLayout> {
  const { store, job } = request;
  const existing = await store.get(jobKey(job));
  if (existing) return checked(decodeLayout(existing), request);
  const layout = await newLayout(request);
  return store.transaction(async (tx) => {
    const raced = await tx.get(jobKey(job));
    if (raced) return checked(decodeLayout(raced), request);
    tx.upsert(encodeLayout(layout));
    return layout;
  });
}

/** Plans in memory only (dry runs write nothing). */
export async function newLayout(request: LayoutRequest): Promise<JobLayout> {
  const shards: KeyRange[] = [];
  const pending: PendingNamespace[] = [];
  const made = {
    job: request.job,
    type: request.type,
    kind: request.kind,
    operation: request.operation,
    createdAt: new Date(),
    ...((await request.rampsByDefault?.()) ? { rampsByDefault: true } : {}),
  };
  if (request.bounds) return { ...made, shards: [...request.bounds], pending };
  const namespaces = typeof request.namespaces === 'function' ? await request.namespaces() : request.namespaces;
  for (const namespace of namespaces) {
    const ranges = await splitNamespace(request.store, { kind: request.kind, namespace, filters: request.filters }, request.shardCount);
    if (ranges) shards.push(...ranges);
    else pending.push({ namespace });
  }
  return { ...made, shards, pending };
}

/**
 * Adds the shards cut from one page of a pending namespace's stream, unless another process already
 * cut that page (the stored cursor moved on). Returns the new shards' indexes, or undefined.
 */
export async function appendPage(store: Datastore, job: JobRef, namespace: string, cursor: Key | undefined, page: CutPage): Promise<number[] | undefined> {
  return store.transaction(async (tx) => {
    const entity = await tx.get(jobKey(job));
    const layout = entity && decodeLayout(entity);
    if (!isLive(layout)) throw lostLayout(job);
    const entry = layout.pending.find((p) => p.namespace === namespace);
    if (!entry || !sameKey(entry.cursor, cursor)) return undefined;
    const first = layout.shards.length;
    layout.shards.push(...page.shards.map((s) => ({ ...s.range, expected: s.keys.length })));
    if (page.next) entry.cursor = page.next;
    else layout.pending = layout.pending.filter((p) => p !== entry);
    tx.upsert(encodeLayout(layout));
    return page.shards.map((_, i) => first + i);
  });
}

export async function loadLayout(store: Datastore, job: JobRef): Promise<JobLayout | undefined> {
  const entity = await store.get(jobKey(job));
  return entity && decodeLayout(entity);
}

/** The job's layout, which must exist: its state was cleared under a run that still uses it otherwise. */
export async function requireLayout(store: Datastore, job: JobRef): Promise<JobLayout> {
  const layout = await loadLayout(store, job);
  if (!isLive(layout)) throw lostLayout(job);
  return layout;
}

function lostLayout(job: JobRef): DsMigrateError {
  return new DsMigrateError('CONFLICT', `Job ${job.id} has no layout in namespace "${job.namespace}": its state was cleared while it ran (\`dsmigrate migrate --restart\`?).`, { job: job.id });
}

function checked(layout: JobLayout, request: LayoutRequest): JobLayout {
  // Job ids are reused only once a migration's record is gone, and its jobs were cleared with it: a
  // cleared layout still here is a clear that stopped midway, which tidying the migration finishes.
  if (layout.cleared) {
    throw new DsMigrateError(
      'CONFLICT',
      `Job ${request.job.id} in namespace "${request.job.namespace}" was being cleared when its process stopped. Finish that with \`dsmigrate migrate --restart <migration>\`, then run again.`,
      { job: request.job.id },
    );
  }
  if (layout.operation !== request.operation) {
    throw new DsMigrateError(
      'CONFLICT',
      `Job ${request.job.id} was started as ${layout.operation}, not ${request.operation}: the migration's file changed while it ran. Restart it with \`dsmigrate migrate --restart <migration>\`.`,
      { job: request.job.id, kind: request.kind },
    );
  }
  return layout;
}

function sameKey(a: Key | undefined, b: Key | undefined): boolean {
  return a === undefined || b === undefined ? a === b : a.equals(b);
}
