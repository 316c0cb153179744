import { GrpcCode, grpcCode } from '../datastore';
import { DsMigrateError } from '../errors';
import type { RunEvent } from '../migrations';
import type { ConverterFunction } from './converters';
import type { ModelDefinition } from './definition';
import { checkConverters, runCleanup, runPlan, schemaMigrationId, type SchemaRunOptions } from './schema-run';
import type { Orphan, SchemaPlan } from './schema-plan';
import { SCHEMA_MIGRATION_KIND, type DefinitionStore, type StoredSchemaMigration } from './store';

export interface ApplyOptions {
  /** Run up to this version (default: every plan that may run, stopping at one waiting for approval). */
  version?: number;
  /** Forced conversions' functions by field name, when this process was not the one given them. */
  converters?: Readonly<Record<string, ConverterFunction>>;
  /**
   * Approve the plan to `version` if it waits for approval, once every check has passed (as `dsmigrate
   * schema apply` does): a refused apply then leaves it pending, as it was.
   */
  approve?: boolean;
  onEvent?: (event: RunEvent) => void;
}

/** The schema migrations of one namespace's definitions: listing, approving, running in version order, cleanup. */
export class SchemaMigrations {
  constructor(
    private readonly definitions: DefinitionStore,
    private readonly run: SchemaRunOptions,
  ) {}

  async list(name?: string): Promise<(StoredSchemaMigration & { id: string })[]> {
    const out: (StoredSchemaMigration & { id: string })[] = [];
    const names = name === undefined ? (await this.definitions.listHeads()).map((h) => h.key.path[0].name ?? '') : [name];
    for (const model of names) {
      const head = await this.definitions.read(model);
      if (head === undefined) continue;
      for (let version = 2; version <= this.definitions.head(head).version; version++) {
        const stored = await this.definitions.readMigration(model, version);
        if (stored) out.push({ ...stored, id: schemaMigrationId(this.definitions.namespace, stored.plan) });
      }
    }
    return out;
  }

  async approve(name: string, version: number, approvedBy: string): Promise<StoredSchemaMigration & { id: string }> {
    const stored = await this.require(name, version);
    if (stored.status !== 'pending') return { ...stored, id: schemaMigrationId(this.definitions.namespace, stored.plan) };
    const approved = await this.definitions.setStatus(name, version, 'approved', approvedBy);
    return { ...approved, id: schemaMigrationId(this.definitions.namespace, approved.plan) };
  }

  async apply(name: string, options: ApplyOptions & { approvedBy: string }): Promise<SchemaPlan[]> {
    const { head, appliedVersion } = await this.definitions.readWithState(name);
    if (head === undefined || this.definitions.head(head).deleted) {
      throw new DsMigrateError('UNKNOWN_KIND', `No model definition named "${name}" is stored (namespace ${JSON.stringify(this.definitions.namespace)}).`, { model: name });
    }
    const current = this.definitions.head(head).version;
    const upTo = options.version ?? current;
    if (!Number.isInteger(upTo) || upTo < 1 || upTo > current) {
      throw new DsMigrateError('BAD_INPUT', `Model definition "${name}" has no version ${upTo} (versions 1 to ${current}).`, { model: name, version: upTo });
    }
    // Check every plan first, so that a refusal changes nothing.
    const plans: StoredSchemaMigration[] = [];
    const converters = options.converters ?? {};
    let approve = false;
    for (let version = appliedVersion + 1; version <= upTo; version++) {
      const stored = await this.require(name, version);
      approve = stored.status === 'pending' && options.approve === true && options.version === version;
      if (stored.status === 'pending' && !approve) {
        if (options.version === undefined) break;
        throw new DsMigrateError(
          'BAD_INPUT',
          `The schema migration of "${name}" v${stored.plan.fromVersion}→v${version} needs approval (it has lossy or forced steps) and has not been approved; ` +
            `approve it with \`dsmigrate schema apply ${name} --version ${version}\` or factory.approveSchema(${JSON.stringify(name)}, ${version}). Nothing was run.`,
          { model: name, version, fromVersion: stored.plan.fromVersion, toVersion: version },
        );
      }
      if (stored.status !== 'applied') checkConverters(stored.plan, converters, this.run.cloudTasks ? 'cloud-tasks' : 'local');
      plans.push(stored);
    }
    if (approve) plans[plans.length - 1] = await this.definitions.setStatus(name, upTo, 'approved', options.approvedBy);
    const ran: SchemaPlan[] = [];
    for (const stored of plans) {
      const { plan } = stored;
      if (stored.status === 'approved') {
        const target: ModelDefinition = this.definitions.decode((await this.definitions.readVersion(name, plan.toVersion))!);
        await runPlan({ ...this.run, onEvent: options.onEvent ?? this.run.onEvent }, plan, target, converters);
        ran.push(plan);
      }
      await this.definitions.setStatus(name, plan.toVersion, 'applied');
    }
    return ran;
  }

  /**
   * The orphans whose retention has passed, removed through the runner, then dropped from their
   * definitions (each by a new version, compare-and-set like any change). Anything a current definition
   * or a plan not yet run still reads is refused before anything is removed.
   */
  async cleanup(options: { olderThanMs: number; dryRun: boolean; now: Date; updatedBy: string; onEvent?: (event: RunEvent) => void }): Promise<Orphan[]> {
    const heads = await this.definitions.listHeads();
    const definitions = heads.map((h) => ({ definition: this.definitions.decode(h), deleted: this.definitions.head(h).deleted, orphans: this.definitions.orphans(h) }));
    const live = definitions.filter((d) => !d.deleted).map((d) => d.definition);
    const unrun = (await this.list()).filter((m) => m.status !== 'applied').map((m) => m.plan);
    const due = definitions.flatMap((d) => d.orphans.filter((o) => options.now.getTime() - Date.parse(o.since) >= options.olderThanMs).map((orphan) => ({ owner: d.definition.name, orphan })));
    for (const { owner, orphan } of due) {
      const user = live.find((d) => d.kind === orphan.kind && (orphan.type === 'kind' || d.fields.some((f) => f.name === orphan.property)));
      const reader = unrun.find((p) =>
        p.steps.some((s) => (s.type === 'CopyModelData' && s.kind === orphan.kind) || (s.type === 'CopyFieldData' && s.kind === orphan.kind && s.from === orphan.property)),
      );
      if (user === undefined && reader === undefined) continue;
      const what = orphan.type === 'kind' ? `kind ${orphan.kind}` : `property ${orphan.kind}.${orphan.property}`;
      const field = user?.fields.find((f) => f.name === orphan.property);
      throw new DsMigrateError(
        'BAD_INPUT',
        `Cleanup refused: the ${what} (orphaned by "${owner}" v${orphan.version}) is ${
          user
            ? `in use by model "${user.name}" v${user.version}${field ? ` (field "${field.name}")` : ''}`
            : `still read by the schema migration of "${reader!.model}" v${reader!.fromVersion}→v${reader!.toVersion}, which has not run`
        }. Nothing was removed.`,
        { model: user?.name ?? reader!.model, field: orphan.property, kind: orphan.kind, version: user?.version ?? reader!.toVersion },
      );
    }
    const orphans = due.map((d) => d.orphan);
    if (options.dryRun || orphans.length === 0) return orphans;
    await runCleanup({ ...this.run, onEvent: options.onEvent ?? this.run.onEvent }, this.definitions, orphans);
    for (const owner of new Set(due.map((d) => d.owner))) await this.forget(owner, new Set(due.filter((d) => d.owner === owner).map((d) => d.orphan.id)), options.updatedBy);
    return orphans;
  }

  /** Drops cleaned orphans from a definition: a new version with the same shape and an empty plan, retried on contention. */
  private async forget(name: string, cleaned: ReadonlySet<string>, updatedBy: string): Promise<void> {
    for (;;) {
      const { head, appliedVersion } = await this.definitions.readWithState(name);
      if (head === undefined) return;
      const { version, deleted, fallbackVersion } = this.definitions.head(head);
      const base = this.definitions.decode(head);
      const orphans = this.definitions.orphans(head);
      if (!orphans.some((o) => cleaned.has(o.id))) return;
      const definition: ModelDefinition = { ...base, version: version + 1, updatedAt: new Date(), updatedBy };
      const plan: SchemaPlan = { model: name, fromVersion: version, toVersion: version + 1, steps: [], orphans: [], restored: [], needsApproval: false, checksum: 'cleanup' };
      try {
        await this.definitions.insertVersion(definition, {
          orphans: orphans.filter((o) => !cleaned.has(o.id)),
          deleted,
          fallbackVersion,
          ...(deleted ? { appliedVersion: version + 1 } : { migration: { plan, status: 'applied', createdAt: new Date() } }),
        });
      } catch (error) {
        const code = grpcCode(error);
        // ALREADY_EXISTS is another writer's version, or our own insert retried after it landed with an
        // unknown outcome: that one still has the state below to move.
        const own = code === GrpcCode.ALREADY_EXISTS && (await this.definitions.isOwnVersion(definition));
        if (!own) {
          if (code === GrpcCode.ALREADY_EXISTS || code === GrpcCode.ABORTED) continue;
          throw error;
        }
      }
      // Everything before was applied: the empty plan keeps it so, without a later apply.
      if (!deleted && appliedVersion === version) await this.definitions.setStatus(name, version + 1, 'applied');
      return;
    }
  }

  private async require(name: string, version: number): Promise<StoredSchemaMigration> {
    const stored = await this.definitions.readMigration(name, version);
    if (stored === undefined) {
      throw new DsMigrateError('UNKNOWN_KIND', `Model definition "${name}" has no schema migration to version ${version} (kind ${SCHEMA_MIGRATION_KIND}).`, { model: name, version });
    }
    return stored;
  }
}
