import { Entity, Key, MAX_ENTITY_BYTES, MAX_KEY_BYTES } from '../datastore';
import { DsMigrateError, errorMessage, isDsMigrateError, sentence } from '../errors';
import { markerKey, type UniqueFields, type UniqueValue } from '../model';
import type { CommitCost } from './batcher';
import { addWarning, zeroCounts, type Counts, type Warnings } from './counts';
import { entityBytes, keyBytes, storedBytes } from './entity-size';
import { matchesFilters } from './filters';
import { uniqueFieldsFor, type EntityDecision, type ShardWork } from './work';

export interface DryRunSample {
  key: string;
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
}

export interface ApplyOptions {
  /** Keys up to this one are already done (another worker got there first): skip them. */
  doneThrough?: Key;
  /**
   * Stop taking entities before the commit's writes (entities, and the unique markers they claim or
   * drop) would exceed this many bytes, or `mutationBudget` mutations, or, where the backend limits
   * entity groups, reach more than `groups.limit` counting the groups the transaction read (`groups.read`,
   * root keys). At least one entity is always taken.
   */
  byteBudget: number;
  mutationBudget?: number;
  groups?: { limit: number; read: ReadonlySet<string> };
  migration?: string;
  dryRun: boolean;
  /**
   * Stop taking entities once deciding them has taken this long (at least one is always taken): a
   * transaction must commit within Datastore's limits (60 s idle, 270 s in all) however slow the
   * operation's function is per entity.
   */
  timeBudgetMs?: number;
  /** Dry runs: collect before/after samples of changed entities. */
  samples?: { limit: number; into: DryRunSample[] };
}

export interface AppliedBatch {
  /** How many of the batch's keys were dealt with; the rest go back to the queue. */
  consumed: number;
  delta: Counts;
  warnings: Warnings;
  /** The keys the batch read (its own and their related keys), by key string. */
  read: ReadonlySet<string>;
  /** Entities to write and keys to delete. */
  puts: Entity[];
  deletes: Key[];
  /** The scanned key that wrote or deleted each written key (by key string), for before-images. */
  sources: Map<string, Key>;
  /** Entities whose unique markers alone change. */
  markers: { entity: Entity; claim: boolean }[];
  /** The scanned entities of a kind with unique fields, or of an operation kept with undo, as they were before the operation changed them (for their markers and before-images). */
  originals: Map<string, Entity>;
  /** What the writes of the consumed keys add to the commit, at most. */
  cost: CommitCost;
  /** The time budget ended the batch early. */
  outOfTime: boolean;
}

/**
 * Runs the operation on one batch of entities that were read together (inside the batch's
 * transaction, or plainly in a dry run). Missing entities and entities that no longer match the
 * filters are passed over; they are not counted as scanned.
 */
export async function applyBatch(work: ShardWork, keys: readonly Key[], found: ReadonlyMap<string, Entity>, options: ApplyOptions): Promise<AppliedBatch> {
  const delta = zeroCounts();
  const warnings: Warnings = {};
  const puts: Entity[] = [];
  const deletes: Key[] = [];
  const markers: AppliedBatch['markers'] = [];
  const originals = new Map<string, Entity>();
  const keepsMarkers = uniqueFieldsFor(work, work.kind) !== undefined;
  const read = new Set<string>();
  for (const key of keys) {
    read.add(key.toString());
    for (const related of work.relatedKeys(key)) read.add(related.toString());
  }
  const beforeOf = (key: Key): Before => originals.get(key.toString()) ?? found.get(key.toString()) ?? (read.has(key.toString()) ? undefined : 'unread');
  const tally = new Tally(options);
  let consumed = 0;
  let outOfTime = false;
  const started = Date.now();
  const context = { migration: options.migration, dryRun: options.dryRun };
  /** Keys written so far, and the source key that wrote each. */
  const sources = new Map<string, Key>();
  const recordWrite = (target: Key, source: Key): void => {
    const earlier = sources.get(target.toString());
    if (earlier) {
      // Two writes of one key in one commit: Datastore keeps only the last, and the other is lost unseen.
      throw new DsMigrateError(
        'OPERATION_FAILED',
        `${work.type} on ${work.kind} wrote ${target} twice in one batch (from ${earlier} and ${source}): each entity may be written once; make the function's writes go to distinct keys.`,
        {
          key: target.toString(),
          kind: work.kind,
          operation: work.type,
          migration: options.migration,
        },
      );
    }
    sources.set(target.toString(), source);
  };
  for (const key of keys) {
    if (consumed > 0 && options.timeBudgetMs !== undefined && Date.now() - started >= options.timeBudgetMs) {
      outOfTime = true;
      break;
    }
    if (options.doneThrough && Key.compare(key, options.doneThrough) <= 0) {
      consumed++;
      continue;
    }
    const entity = found.get(key.toString());
    if (entity && matchesFilters(entity, work.filters)) {
      const sampling = options.samples && options.samples.into.length < options.samples.limit;
      const before = sampling ? entity.toObject() : null;
      const relatedKeys = work.relatedKeys(key);
      const related = relatedKeys.length === 0 ? NONE_RELATED : relatedKeys.map((k) => found.get(k.toString()));
      // Operations change entities in place: the markers to drop, and a before-image, are of the values held before.
      if (keepsMarkers || work.undo) originals.set(key.toString(), entity.snapshot());
      let decision: EntityDecision | undefined;
      try {
        // Awaited only when it is a promise: most operations decide at once, and a batch decides hundreds.
        const made = work.apply(entity, related, context);
        decision = isPromiseLike(made) ? await made : made;
        if (decision.action === 'put') checkSize(decision.entity);
      } catch (error) {
        decision = skipOrThrow(work, entity, error, options, delta, warnings);
      }
      // Over a limit, the prefix taken so far commits, checkpointed at its last key: exact, as the keys after it are neither written nor counted, and the next transaction reads them again.
      if (decision && decision.action !== 'skip' && !tally.take(writesOf(work, decision, beforeOf, tally.scratch()), consumed === 0)) break;
      if (decision?.action === 'markers') markers.push({ entity: decision.entity, claim: decision.claim });
      else if (decision && decision.action !== 'skip') {
        const also = decision.also ?? NONE_ALSO;
        recordWrite(decision.action === 'put' ? decision.entity.key : decision.key, key);
        for (const entity of also) recordWrite(entity.key, key);
        if (decision.action === 'put') puts.push(decision.entity);
        else deletes.push(decision.key);
        for (const entity of also) puts.push(entity);
        if (sampling) options.samples!.into.push({ key: key.toString(), before, after: decision.action === 'put' ? decision.entity.toObject() : null });
      }
      delta.scanned++;
      if (decision) count(decision, delta, warnings);
    }
    consumed++;
  }
  return { consumed, delta, warnings, read, puts, deletes, sources, markers, originals, cost: tally.cost, outOfTime };
}

// Shared empty lists: most entities have no related keys and no other writes, and a batch decides hundreds.
const NONE_RELATED: readonly (Entity | undefined)[] = [];
const NONE_ALSO: readonly Entity[] = [];

/** What a before-image holds besides the entity it keeps and its key: the hash, times and flags. */
const IMAGE_OVERHEAD_BYTES = 400;

/** An entity as it was before the batch changed it (undefined: there was none), or 'unread' where the transaction did not read it. */
type Before = Entity | undefined | 'unread';

/**
 * Writes of one decision: mutations, estimated bytes, and the entity groups (roots) they touch. One is
 * filled anew for each decision of a batch, which decides hundreds: its roots are written over, not
 * emptied (an array emptied by its length gives up its storage, and the next push allocates it again).
 */
class Writes {
  mutations = 0;
  bytes = 0;
  /** How many of `roots` are this decision's (a group may be among them more than once). */
  rootCount = 0;
  readonly roots: string[] = [];

  clear(): this {
    this.mutations = 0;
    this.bytes = 0;
    this.rootCount = 0;
    return this;
  }

  add(mutations: number, bytes: number, root: string): void {
    this.mutations += mutations;
    this.bytes += bytes;
    this.roots[this.rootCount++] = root;
  }
}

/** What the writes decided so far add to the commit, kept within the limits. */
class Tally {
  readonly cost: CommitCost = { mutations: 0, bytes: 0, groups: 0 };
  private readonly touched: Set<string>;
  private readonly writes = new Writes();
  /** The groups the last writes added, written over in the same way. */
  private readonly added: string[] = [];

  constructor(private readonly options: ApplyOptions) {
    this.touched = new Set(options.groups?.read);
  }

  /** The writes to fill for the next decision, emptied. */
  scratch(): Writes {
    return this.writes.clear();
  }

  /** Adds the writes, unless they would take the commit over a limit and `anyway` is false. */
  take(writes: Writes, anyway: boolean): boolean {
    const { mutationBudget = Infinity, byteBudget, groups } = this.options;
    // Counted in, and taken out again if they do not fit: the common write reaches one group, already read.
    const added = this.added;
    let count = 0;
    for (let i = 0; i < writes.rootCount; i++) {
      const root = writes.roots[i];
      if (this.touched.has(root)) continue;
      this.touched.add(root);
      added[count++] = root;
    }
    const mutations = this.cost.mutations + writes.mutations;
    const bytes = this.cost.bytes + writes.bytes;
    const reached = this.cost.groups + count;
    if (!anyway && (mutations > mutationBudget || bytes > byteBudget || (groups !== undefined && groups.read.size + reached > groups.limit))) {
      for (let i = 0; i < count; i++) this.touched.delete(added[i]);
      return false;
    }
    this.cost.mutations = mutations;
    this.cost.bytes = bytes;
    this.cost.groups = reached;
    return true;
  }
}

/**
 * What a decision writes, at most, filled into `writes` (empty): the entity it puts or deletes, and the markers keepMarkers
 * (src/model/unique.ts) may write for it: one claimed per unique value held after, one dropped per value
 * held before and not after (it skips those already as they should be).
 */
function writesOf(work: ShardWork, decision: Exclude<EntityDecision, { action: 'skip' }>, beforeOf: (key: Key) => Before, writes: Writes): Writes {
  let key: Key;
  let before: Before;
  let after: Entity | undefined;
  if (decision.action === 'markers') {
    key = decision.entity.key;
    before = decision.entity;
    after = decision.claim ? decision.entity : undefined;
  } else if (decision.action === 'put') {
    key = decision.entity.key;
    before = beforeOf(key);
    after = decision.entity;
    addWrite(writes, key, entityBytes(decision.entity));
  } else {
    key = decision.key;
    before = beforeOf(key);
    addWrite(writes, key, keyBytes(key));
  }
  if (decision.action !== 'markers') for (const entity of decision.also ?? NONE_ALSO) addWrite(writes, entity.key, entityBytes(entity));
  if (work.undo && decision.action !== 'markers') {
    // Its before-image: a root entity of its own, as large as what it keeps (unknown when unread: the most an entity takes).
    writes.add(1, IMAGE_OVERHEAD_BYTES + 2 * keyBytes(key) + (before === 'unread' ? MAX_ENTITY_BYTES : before ? entityBytes(before) : 0), `the before-image of ${key}`);
  }
  const unique = uniqueFieldsFor(work, key.kind);
  if (!unique) return writes;
  const claims = after ? valuesOf(unique, after) : [];
  for (const value of claims) {
    // A marker as src/model/unique.ts writes it.
    const marker = Entity.from(markerKey(key, value), { kind: unique.kind, field: value.field, owner: key });
    addWrite(writes, marker.key, entityBytes(marker));
  }
  if (before === 'unread') {
    // What it held is unknown: every field may drop a marker of any key, each a root of its own.
    for (const field of unique.fields) {
      writes.add(1, MAX_KEY_BYTES, `a marker of ${key}.${field}`);
    }
  } else if (before) {
    for (const dropped of valuesOf(unique, before).filter((value) => !claims.some((c) => c.markerName === value.markerName))) {
      const marker = markerKey(key, dropped);
      addWrite(writes, marker, keyBytes(marker));
    }
  }
  return writes;
}

function addWrite(writes: Writes, key: Key, bytes: number): void {
  writes.add(1, bytes, key.root.toString());
}

function valuesOf(unique: UniqueFields, entity: Entity): UniqueValue[] {
  return unique.fields.map((field) => unique.valueOf(entity, field)).filter((v): v is UniqueValue => v !== undefined);
}

function isPromiseLike<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

/** The operation threw on `entity`: undefined (counted as failed) when errors are skipped, otherwise the run's error. */
function skipOrThrow(work: ShardWork, entity: Entity, error: unknown, options: ApplyOptions, delta: Counts, warnings: Warnings): undefined {
  // A mistake in how the operation is written (BAD_INPUT, e.g. a map function assigning entity.x) is
  // the same on every entity: it stops the run even with skipErrors, which is for bad data.
  const misuse = isDsMigrateError(error, 'BAD_INPUT');
  if (!work.skipErrors || misuse) {
    const where = options.migration ? ` in migration ${options.migration}` : '';
    throw new DsMigrateError(
      'OPERATION_FAILED',
      // How to go on (run again, keep the done batches with a fixed file, or start over) is said by whoever shows the failure (src/migrations/planning.ts recoveryAdvice).
      `${work.type} on ${work.kind} failed at key ${entity.key}${where}: ${sentence(errorMessage(error))}` + (misuse ? '' : ' Pass {skipErrors: true} to count such entities as failed and go on.'),
      { key: entity.key.toString(), migration: options.migration, kind: work.kind, operation: work.type },
      { cause: error },
    );
  }
  delta.failed++;
  addWarning(warnings, 'Failed and skipped', `${entity.key} (${errorMessage(error).slice(0, 200)})`);
  return undefined;
}

/** Said here, naming the key: Firestore in Datastore mode refuses the whole commit without naming the entity, and the classic emulator stores it. */
function checkSize(entity: Entity): void {
  const bytes = storedBytes(entity);
  if (bytes > MAX_ENTITY_BYTES) {
    throw new Error(`the entity it writes at ${entity.key} would take ${bytes.toLocaleString('en-US')} bytes, over Datastore's ${MAX_ENTITY_BYTES.toLocaleString('en-US')} bytes per entity`);
  }
}

function count(decision: EntityDecision, delta: Counts, warnings: Warnings): void {
  if (decision.action === 'put' || decision.action === 'markers') delta.changed++;
  else if (decision.action === 'delete') delta.deleted++;
  else delta.skipped++;
  if ((decision.action === 'put' || decision.action === 'skip') && decision.warning) addWarning(warnings, decision.warning.topic, decision.warning.key.toString());
}
