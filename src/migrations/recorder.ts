import { hostname } from 'node:os';
import { CONTROL_KINDS, corrupt, decodeJson, decodeStored, migrationKey } from '../control';
import { Entity, Transaction, type Datastore } from '../datastore';
import { DsMigrateError } from '../errors';
import { zeroJobCounts, type JobCounts } from '../sharding';
import { Coverage, type Direction, type StoredCoverage } from './coverage';

export type MigrationState = 'running' | 'applied' | 'failed' | 'faked';
export type { Direction, JobCounts };

const STATES: readonly MigrationState[] = ['running', 'applied', 'failed', 'faked'];

/** What an operation's latest job counted, for `status`. */
export interface OperationRecord extends JobCounts {
  type: string;
  kind: string;
  /** Where the operation is in effect: nowhere, everywhere in its scope, or over the key ranges its jobs committed. */
  applied: Coverage;
  /** The job under way (or interrupted) and its direction; folded into `applied` when the direction changes. */
  job?: { seq: number; direction: Direction };
  /** The sequence number the operation's next job takes (job ids never repeat: src/control/keys.ts). */
  nextSeq: number;
}

export interface MigrationRecord {
  id: string;
  app: string;
  name: string;
  state: MigrationState;
  checksum: string;
  startedAt?: Date;
  finishedAt?: Date;
  host?: string;
  error?: string;
  /** The code of `error` (src/errors.ts), for the advice on how to go on. */
  errorCode?: string;
  /** 'forward' while being applied, 'reverse' while being unapplied. */
  direction: Direction;
  /** The target of the run that began it (`app:name` or `app:zero`; none: everything pending), which its advice names to go on. */
  target?: string;
  /** In the file's order, whatever the direction. */
  operations: OperationRecord[];
}

/** How many operations are done in the record's direction (applied everywhere going forward, nowhere going back). */
export function operationsDone(record: MigrationRecord): number {
  return record.operations.filter((op) => (record.direction === 'forward' ? op.applied.isAll : op.applied.isNone)).length;
}

/** Records written in a transaction that has not committed: later reads in it must see them, as Datastore's own reads would not. */
const written = new WeakMap<Transaction, Map<string, MigrationRecord | null>>();

/**
 * The history of migrations, kept in Datastore itself so every machine and CI job sees the same one.
 * Over a transaction, reads and writes join it, so a record changes in the same commit as the state
 * it describes (a lifecycle step, a Cloud Tasks run moving on), and two steps in one transaction (the
 * last step of a migration and its finish) each see what the other wrote.
 */
export class Recorder {
  constructor(
    private readonly store: Datastore | Transaction,
    private readonly namespace: string,
  ) {}

  async list(): Promise<Map<string, MigrationRecord>> {
    if (this.store instanceof Transaction) throw new DsMigrateError('BAD_INPUT', 'Migration records cannot be listed inside a transaction (that would be a query).');
    const out = new Map<string, MigrationRecord>();
    for await (const entity of this.store.query({ kind: CONTROL_KINDS.migration, namespace: this.namespace })) {
      const record = decodeRecord(entity);
      out.set(record.id, record);
    }
    return out;
  }

  async get(id: string): Promise<MigrationRecord | undefined> {
    const pending = this.pending()?.get(`${this.namespace}\0${id}`);
    if (pending !== undefined) return pending ?? undefined;
    const entity = await this.store.get(migrationKey(this.namespace, id));
    return entity && decodeRecord(entity);
  }

  async save(record: MigrationRecord): Promise<void> {
    const entity = encodeRecord(this.namespace, record);
    if (this.store instanceof Transaction) {
      this.store.upsert(entity);
      this.pending()!.set(`${this.namespace}\0${record.id}`, record);
    } else await this.store.save([entity]);
  }

  async remove(id: string): Promise<void> {
    const key = migrationKey(this.namespace, id);
    if (this.store instanceof Transaction) {
      this.store.delete(key);
      this.pending()!.set(`${this.namespace}\0${id}`, null);
    } else await this.store.delete([key]);
  }

  private pending(): Map<string, MigrationRecord | null> | undefined {
    if (!(this.store instanceof Transaction)) return undefined;
    let map = written.get(this.store);
    if (!map) written.set(this.store, (map = new Map()));
    return map;
  }

  /** A record for a migration starting now: none of its operations applied anywhere. */
  static fresh(id: string, app: string, name: string, checksum: string, operations: readonly { type: string; kind?: string }[], direction: Direction): MigrationRecord {
    return {
      id,
      app,
      name,
      checksum,
      state: 'running',
      startedAt: new Date(),
      host: `${hostname()}:${process.pid}`,
      direction,
      operations: operations.map((op) => ({ type: op.type, kind: op.kind ?? '', applied: Coverage.none(), nextSeq: 0, ...zeroJobCounts() })),
    };
  }
}

interface StoredOperation extends JobCounts {
  type: string;
  kind: string;
  applied: StoredCoverage;
  job?: { seq: number; direction: Direction };
  nextSeq: number;
}

function encodeRecord(namespace: string, r: MigrationRecord): Entity {
  const operations: StoredOperation[] = r.operations.map((op) => ({ ...op, applied: op.applied.toJSON() }));
  return Entity.from(
    migrationKey(namespace, r.id),
    {
      app: r.app,
      name: r.name,
      state: r.state,
      checksum: r.checksum,
      startedAt: r.startedAt ?? null,
      finishedAt: r.finishedAt ?? null,
      host: r.host ?? null,
      error: r.error ?? null,
      errorCode: r.errorCode ?? null,
      direction: r.direction,
      target: r.target ?? null,
      operations: JSON.stringify(operations),
    },
    { excludeFromIndexes: ['error', 'errorCode', 'target', 'operations'] },
  );
}

function isDirection(x: unknown): x is Direction {
  return x === 'forward' || x === 'reverse';
}

function validOperation(op: unknown): op is StoredOperation {
  if (typeof op !== 'object' || op === null) return false;
  const o = op as Record<string, unknown>;
  const job = o.job as Record<string, unknown> | undefined;
  return (
    typeof o.type === 'string' &&
    typeof o.kind === 'string' &&
    Number.isInteger(o.nextSeq) &&
    (job === undefined || (Number.isInteger(job.seq) && isDirection(job.direction))) &&
    Coverage.isStored(o.applied) &&
    (['scanned', 'changed', 'deleted', 'skipped', 'failed', 'shardsDone', 'shardsTotal'] as const).every((n) => typeof o[n] === 'number')
  );
}

function decodeRecord(entity: Entity): MigrationRecord {
  const v = decodeStored(entity, {
    app: 'string',
    name: 'string',
    state: 'string',
    checksum: 'string',
    startedAt: 'date?',
    finishedAt: 'date?',
    host: 'string?',
    error: 'string?',
    errorCode: 'string?',
    direction: 'string',
    target: 'string?',
    operations: 'string',
  });
  if (!STATES.includes(v.state as MigrationState)) throw corrupt(entity, `its state "${v.state}" is unknown`);
  if (!isDirection(v.direction)) throw corrupt(entity, `its direction "${v.direction}" is unknown`);
  const stored = decodeJson<{ list: StoredOperation[] }>(entity, 'operations', `{"list":${v.operations}}`, (x) => Array.isArray(x.list) && x.list.every(validOperation));
  return {
    id: entity.key.name!,
    app: v.app,
    name: v.name,
    state: v.state as MigrationState,
    checksum: v.checksum,
    startedAt: v.startedAt,
    finishedAt: v.finishedAt,
    host: v.host,
    error: v.error,
    errorCode: v.errorCode,
    direction: v.direction,
    target: v.target,
    operations: stored.list.map((op) => ({ ...op, applied: Coverage.fromJSON(op.applied) })),
  };
}
