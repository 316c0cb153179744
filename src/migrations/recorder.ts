import { hostname } from 'node:os';
import { Entity, Key, Transaction, type Datastore } from '../datastore';
import { DsMigrateError } from '../errors';

export const MIGRATION_KIND = '_dsmigrate_migration';

export type MigrationState = 'pending' | 'running' | 'applied' | 'failed' | 'faked';

export interface OperationRecord {
  type: string;
  kind: string;
  done: boolean;
  scanned: number;
  changed: number;
  deleted: number;
  skipped: number;
  failed: number;
  shardsDone: number;
  shardsTotal: number;
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
  /** How many operations have finished, so a resumed run starts at the next one. */
  operationsDone: number;
  operations: OperationRecord[];
  /** 'forward' or, while being unapplied, 'reverse'. */
  direction: 'forward' | 'reverse';
}

/**
 * The history of migrations, kept in Datastore itself so every machine and CI job sees the same one.
 * Over a transaction, reads and writes join it, so a record changes in the same commit as the state
 * it describes (the Cloud Tasks pipeline moving a run on).
 */
export class Recorder {
  constructor(
    private readonly store: Datastore | Transaction,
    private readonly namespace = '',
  ) {}

  private key(id: string): Key {
    return Key.of(MIGRATION_KIND, id, { namespace: this.namespace });
  }

  async list(): Promise<Map<string, MigrationRecord>> {
    if (this.store instanceof Transaction) throw new DsMigrateError('BAD_INPUT', 'Migration records cannot be listed inside a transaction (that would be a query).');
    const out = new Map<string, MigrationRecord>();
    for await (const entity of this.store.query({ kind: MIGRATION_KIND, namespace: this.namespace })) {
      const record = fromEntity(entity);
      out.set(record.id, record);
    }
    return out;
  }

  async get(id: string): Promise<MigrationRecord | undefined> {
    const entity = await this.store.get(this.key(id));
    return entity && fromEntity(entity);
  }

  async save(record: MigrationRecord): Promise<void> {
    const entity = toEntity(this.key(record.id), record);
    if (this.store instanceof Transaction) this.store.upsert(entity);
    else await this.store.save([entity]);
  }

  async remove(id: string): Promise<void> {
    if (this.store instanceof Transaction) this.store.delete(this.key(id));
    else await this.store.delete([this.key(id)]);
  }

  /** A record for a migration starting now, with an empty record for each of its operations. */
  static fresh(id: string, app: string, name: string, checksum: string, operations: readonly { type: string; kind: string }[]): MigrationRecord {
    return {
      id,
      app,
      name,
      checksum,
      state: 'running',
      startedAt: new Date(),
      host: `${hostname()}:${process.pid}`,
      operationsDone: 0,
      operations: operations.map((op) => ({ type: op.type, kind: op.kind, done: false, scanned: 0, changed: 0, deleted: 0, skipped: 0, failed: 0, shardsDone: 0, shardsTotal: 0 })),
      direction: 'forward',
    };
  }
}

function toEntity(key: Key, r: MigrationRecord): Entity {
  return Entity.from(
    key,
    {
      app: r.app,
      name: r.name,
      state: r.state,
      checksum: r.checksum,
      startedAt: r.startedAt ?? null,
      finishedAt: r.finishedAt ?? null,
      host: r.host ?? null,
      error: r.error ?? null,
      operationsDone: r.operationsDone,
      direction: r.direction,
      operations: JSON.stringify(r.operations),
    },
    { excludeFromIndexes: ['error', 'operations'] },
  );
}

function fromEntity(entity: Entity): MigrationRecord {
  const v = entity.toObject();
  const date = (x: unknown) => (x instanceof Date ? x : undefined);
  return {
    id: entity.key.name!,
    app: String(v.app),
    name: String(v.name),
    state: v.state as MigrationState,
    checksum: String(v.checksum),
    startedAt: date(v.startedAt),
    finishedAt: date(v.finishedAt),
    host: typeof v.host === 'string' ? v.host : undefined,
    error: typeof v.error === 'string' ? v.error : undefined,
    operationsDone: Number(v.operationsDone ?? 0),
    direction: v.direction === 'reverse' ? 'reverse' : 'forward',
    operations: typeof v.operations === 'string' ? (JSON.parse(v.operations) as OperationRecord[]) : [],
  };
}
