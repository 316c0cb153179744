import { hostname } from 'node:os';
import { Entity, Key, type Datastore } from '../datastore';

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

/** The history of migrations, kept in Datastore itself so every machine and CI job sees the same one. */
export class Recorder {
  constructor(
    private readonly store: Datastore,
    private readonly namespace = '',
  ) {}

  private key(id: string): Key {
    return Key.of(MIGRATION_KIND, id, { namespace: this.namespace });
  }

  async list(): Promise<Map<string, MigrationRecord>> {
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
    await this.store.save([toEntity(this.key(record.id), record)]);
  }

  async remove(id: string): Promise<void> {
    await this.store.delete([this.key(id)]);
  }

  static fresh(id: string, app: string, name: string, checksum: string, operations: OperationRecord[]): MigrationRecord {
    return { id, app, name, checksum, state: 'running', startedAt: new Date(), host: `${hostname()}:${process.pid}`, operationsDone: 0, operations, direction: 'forward' };
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
