import { Key, type PropertyFilter, type Value } from '../datastore';
import { DsMigrateError } from '../errors';
import { MAX_BATCH, rateProblem, type RateOption, type UndoSpec } from '../sharding';

/** One namespace, a list, or '*' for every namespace; '' is the default namespace. */
export type NamespaceOption = string | readonly string[];

/** Equality on properties (`{status: 'active'}`), or explicit filters. */
export type FilterOption = Readonly<Record<string, Value>> | PropertyFilter | readonly PropertyFilter[];

/** Options every operation takes in its last argument, next to its own. */
export interface ScanOptions {
  namespace?: NamespaceOption;
  filter?: FilterOption;
  /** Shards per namespace; by default from the kind's size. */
  shardCount?: number;
  /** Entities per transaction (1–499); 499 by default. */
  batchSize?: number;
  /** Count entities whose processing throws as failed and go on, instead of failing the operation. */
  skipErrors?: boolean;
  /** The most entities per second written over all shards, ramped up by 500/50/5 if asked (see docs/operations.md, "Write rate"). */
  rate?: RateOption;
  /** `'noop'`: backing out leaves this operation's data as it is and records it undone (Django's RunPython.noop). */
  reverse?: 'noop';
  /**
   * Keep a before-image of every entity the operation changes or deletes, in the same transaction as the
   * change, for `retain` (`'14d'`, `'12h'`; 7 days with `true`): backing out then restores them exactly
   * (docs/undo.md).
   */
  undo?: UndoOption;
}

export type UndoOption = boolean | { retain?: string };

/** How long before-images are kept when `undo: true` gives no `retain`. */
export const DEFAULT_UNDO_RETAIN = '7d';

// As many as a commit holds beside the checkpoint: a shard's batches run one after another, two round trips
// each, and at 50 ms per RPC batches of 400 took 7% longer on average. Markers, images and size cut a batch further.
export const DEFAULT_BATCH_SIZE = MAX_BATCH;
const MAX_SHARD_COUNT = 1000;
const OPS = new Set(['=', '!=', '<', '<=', '>', '>=', 'IN', 'NOT_IN']);
/** Every operation's on/off options: checked here, in one place, so that `overwrite: 'yes'` is refused wherever it is taken. */
const BOOLEAN_OPTIONS = ['skipErrors', 'overwrite', 'overwriteExisting', 'indexed'] as const;

export interface Scope {
  namespaces: readonly string[] | '*';
  filters: readonly PropertyFilter[];
  shardCount?: number;
  batchSize: number;
  skipErrors: boolean;
  rate?: RateOption;
  /** Before-images are kept (ScanOptions.undo). */
  undo?: UndoSpec;
}

/**
 * Checks and normalises the scan options, and the type of every boolean option the operation takes
 * next to them; `where` names the operation and kind for messages.
 */
export function parseScope(options: Omit<ScanOptions, 'reverse'>, where: { type: string; kind: string }): Scope {
  const fail: Fail = (message, extra = {}) => new DsMigrateError('BAD_INPUT', `${where.type} on ${where.kind}: ${message}`, { kind: where.kind, operation: where.type, ...extra });
  const { namespace = '', shardCount, batchSize = DEFAULT_BATCH_SIZE, skipErrors = false } = options;

  let namespaces: readonly string[] | '*';
  if (namespace === '*') namespaces = '*';
  else if (typeof namespace === 'string') namespaces = [namespace];
  else if (Array.isArray(namespace)) {
    if (namespace.length === 0) throw fail("the namespace list is empty; give at least one namespace ('' is the default one) or '*' for all.");
    const bad = namespace.find((n) => typeof n !== 'string' || n === '*');
    if (bad !== undefined) throw fail(`namespace list entry ${JSON.stringify(bad)} is not a namespace name ('*' stands alone, not in a list).`);
    namespaces = [...new Set(namespace)];
  } else throw fail(`namespace must be a name, a list of names or '*', not ${JSON.stringify(namespace)}.`);
  if (namespaces !== '*') {
    for (const name of namespaces) {
      const problem = Key.namespaceProblem(name);
      if (problem) throw fail(`namespace ${problem}. A namespace is '' (the default one) or up to 100 letters, digits, '.', '-' and '_'.`, { namespace: name });
    }
  }

  if (shardCount !== undefined && (!Number.isInteger(shardCount) || shardCount < 1 || shardCount > MAX_SHARD_COUNT)) {
    throw fail(`shardCount must be a whole number from 1 to ${MAX_SHARD_COUNT}, not ${shardCount}.`);
  }
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_BATCH) {
    throw fail(`batchSize must be a whole number from 1 to ${MAX_BATCH} (a transaction holds at most 500 writes, one is the checkpoint), not ${batchSize}.`);
  }
  for (const name of BOOLEAN_OPTIONS) {
    const value = (options as Record<string, unknown>)[name];
    if (value !== undefined && typeof value !== 'boolean') throw fail(`${name} must be true or false, not ${JSON.stringify(value)}.`);
  }
  return { namespaces, filters: parseFilters(options.filter, fail), shardCount, batchSize, skipErrors, rate: parseRate(options.rate, fail), undo: parseUndo(options.undo, fail) };
}

const UNITS_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A retention such as '14d', '12h', '90m' or '30s', in milliseconds; undefined if it is none. */
export function retentionMs(text: unknown): number | undefined {
  const match = typeof text === 'string' ? /^([1-9]\d*)([smhd])$/.exec(text) : null;
  return match ? Number(match[1]) * UNITS_MS[match[2]] : undefined;
}

function parseUndo(undo: UndoOption | undefined, fail: Fail): UndoSpec | undefined {
  if (undo === undefined || undo === false) return undefined;
  const retain = undo === true ? DEFAULT_UNDO_RETAIN : typeof undo === 'object' && undo !== null && !Array.isArray(undo) ? (undo.retain ?? DEFAULT_UNDO_RETAIN) : undefined;
  const extra = typeof undo === 'object' && undo !== null ? Object.keys(undo).filter((k) => k !== 'retain') : [];
  if (retain === undefined || extra.length > 0) throw fail(`undo must be true, false or {retain: '14d'}, not ${JSON.stringify(undo)}.`, { option: 'undo' });
  const retainMs = retentionMs(retain);
  if (retainMs === undefined)
    throw fail(`undo.retain must be a whole number of days, hours, minutes or seconds such as '14d', '12h', '90m' or '30s', not ${JSON.stringify(retain)}.`, { option: 'undo.retain' });
  return { retain, retainMs };
}

type Fail = (message: string, extra?: Record<string, unknown>) => DsMigrateError;

function parseRate(rate: RateOption | undefined, fail: Fail): RateOption | undefined {
  if (rate === undefined) return undefined;
  if (typeof rate !== 'object' || rate === null) throw fail(`rate must be {maxEntitiesPerSecond, rampUp?}, not ${JSON.stringify(rate)}.`, { option: 'rate' });
  const problem = rateProblem(rate.maxEntitiesPerSecond, 'rate.maxEntitiesPerSecond');
  if (problem) throw fail(problem, { option: 'rate.maxEntitiesPerSecond' });
  if (rate.rampUp !== undefined && typeof rate.rampUp !== 'boolean') throw fail(`rate.rampUp must be true or false, not ${JSON.stringify(rate.rampUp)}.`, { option: 'rate.rampUp' });
  return { maxEntitiesPerSecond: rate.maxEntitiesPerSecond, rampUp: rate.rampUp };
}

function isFilter(f: unknown): f is PropertyFilter {
  return typeof f === 'object' && f !== null && !Array.isArray(f) && 'property' in f && 'op' in f && 'value' in f;
}

function filterList(filter: FilterOption, fail: Fail): PropertyFilter[] {
  if (Array.isArray(filter)) {
    return (filter as unknown[]).map((f, i) => {
      if (!isFilter(f)) throw fail(`filter[${i}] must be {property, op, value}.`);
      return f;
    });
  }
  if (isFilter(filter)) return [filter];
  // {property: 'status', op: '='} without a value would otherwise read as equalities on properties named property and op.
  if (typeof filter === 'object' && filter !== null && ('property' in filter || 'op' in filter)) {
    throw fail(`filter ${JSON.stringify(filter)} must be {property, op, value}, all three (for equality on a property named property or op, write {property: 'op', op: '=', value: ...}).`);
  }
  if (typeof filter === 'object' && filter !== null) {
    return Object.entries(filter as Record<string, Value>).map(([property, value]) => ({ property, op: '=' as const, value }));
  }
  throw fail('filter must be an object of equalities or a list of {property, op, value}.');
}

function parseFilters(filter: FilterOption | undefined, fail: Fail): PropertyFilter[] {
  if (filter === undefined) return [];
  const list = filterList(filter, fail);
  for (const f of list) {
    if (typeof f.property !== 'string' || !f.property || f.property.startsWith('__')) throw fail(`filter property ${JSON.stringify(f.property)} is not a property name.`, { field: f.property });
    // Datastore's index matches a dotted name inside embedded entities, but every entity read is checked
    // against the filter again in its transaction, by top-level property: the two would disagree.
    if (f.property.includes('.')) {
      throw fail(
        `filter on "${f.property}": Datastore filters on embedded properties only through its index, and this tool checks each filter again on every entity it reads, where "${f.property}" is no top-level property. ` +
          `Filter on a top-level property, or test the embedded value in a MapFunctionOnEntities: (entity) => { const v = entity.get('${f.property.split('.')[0]}'); ... }.`,
        { field: f.property },
      );
    }
    if (!OPS.has(f.op)) throw fail(`filter on ${f.property} has an unknown operator ${JSON.stringify(f.op)}.`, { field: f.property });
    if (f.value === undefined) throw fail(`filter on ${f.property} has no value.`, { field: f.property });
    if ((f.op === 'IN' || f.op === 'NOT_IN') && (!Array.isArray(f.value) || f.value.length === 0)) throw fail(`filter on ${f.property}: ${f.op} needs a non-empty list.`, { field: f.property });
  }
  return list;
}
