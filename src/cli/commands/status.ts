import type { CommandModule } from 'yargs';
import { recentRuns } from '../../executors/cloud-tasks';
import { isApplied, operationsDone, Recorder, type MigrationRecord, type MigrationState } from '../../migrations';
import { openContext } from '../context';
import { jsonLine, table } from '../output';
import type { GlobalFlags } from '../flags';

export interface StatusRow {
  app: string;
  name: string;
  state: MigrationState | 'pending';
  /** 'reverse' while being unapplied. */
  direction?: MigrationRecord['direction'];
  progress: string;
  appliedAt?: string;
  error?: string;
  /** The record exists but its file is gone. */
  missingFile?: boolean;
  /** A runtime model's schema migration, recorded with the two versions it moves between. */
  schema?: boolean;
  operations?: { type: string; kind: string; applied: 'all' | 'none' | 'part'; scanned: number; changed: number; deleted: number; shardsDone: number; shardsTotal: number }[];
}

/** The app of runtime models' schema migrations (src/dynamic/schema-run.ts). */
const SCHEMA_APP = 'schema';

/** How many of the last Cloud Tasks runs `status` lists. */
const RUNS_SHOWN = 5;

function progressOf(record: MigrationRecord | undefined, operations: number): string {
  if (!record) return `0/${operations} ops`;
  if (isApplied(record)) return `${operations}/${operations} ops`;
  const current = record.operations.find((op) => op.job);
  const shards = current && current.shardsTotal ? `, shards ${current.shardsDone}/${current.shardsTotal}, ${current.scanned} scanned` : '';
  return `${operationsDone(record)}/${record.operations.length || operations} ops${record.direction === 'reverse' ? ' undone' : ''}${shards}`;
}

function operationsOf(record: MigrationRecord | undefined): StatusRow['operations'] {
  return record?.operations.map(({ type, kind, applied, scanned, changed, deleted, shardsDone, shardsTotal }) => ({
    type,
    kind,
    applied: applied.isAll ? 'all' : applied.isNone ? 'none' : 'part',
    scanned,
    changed,
    deleted,
    shardsDone,
    shardsTotal,
  }));
}

export const statusCommand: CommandModule<GlobalFlags, GlobalFlags & { runs: boolean }> = {
  command: 'status',
  builder: (y) => y.option('runs', { type: 'boolean', default: false, describe: 'With --json: print {migrations, runs}, the last Cloud Tasks runs included' }),
  describe: 'Show every migration with its state and progress',
  handler: async (argv) => {
    const ctx = await openContext(argv);
    try {
      const records = await new Recorder(ctx.store, ctx.config.controlNamespace).list();
      const rows: StatusRow[] = ctx.graph.ordered.map((m) => {
        const r = records.get(m.id);
        return {
          app: m.app,
          name: m.name,
          state: r?.state ?? 'pending',
          direction: r?.direction,
          progress: progressOf(r, m.definition.operations.length),
          appliedAt: r && isApplied(r) ? r.finishedAt?.toISOString() : undefined,
          error: r?.error,
          operations: operationsOf(r),
        };
      });
      for (const [id, r] of records) {
        if (ctx.graph.byId.has(id)) continue;
        // A runtime model's schema migration (app `schema`, src/dynamic/schema-run.ts) has no file by design.
        const schema = r.app === SCHEMA_APP;
        rows.push({
          app: r.app,
          name: r.name,
          state: r.state,
          progress: progressOf(r, r.operations.length),
          appliedAt: r.finishedAt?.toISOString(),
          error: r.error,
          ...(schema ? { schema } : { missingFile: true }),
        });
      }
      const runs = (await recentRuns(ctx.store, ctx.config.controlNamespace, RUNS_SHOWN)).map((r) => ({
        id: r.id,
        status: r.status,
        direction: r.direction,
        migrations: r.migrations.map((m) => m.id),
        createdAt: r.createdAt.toISOString(),
        finishedAt: r.finishedAt?.toISOString(),
        error: r.error,
      }));
      if (argv.json) {
        jsonLine(argv.runs ? { migrations: rows, runs } : rows);
        return;
      }
      process.stdout.write(
        `${table(
          ['APP', 'NAME', 'STATE', 'PROGRESS', 'APPLIED'],
          rows.map((r) => [r.app, r.name + (r.missingFile ? ' (file missing)' : r.schema ? ' (runtime model)' : ''), r.state, r.progress, r.appliedAt ?? '']),
        )}\n`,
      );
      for (const r of rows.filter((x) => x.error)) {
        process.stdout.write(
          `\n${r.app}:${r.name} failed: ${r.error}\nFix the cause and run \`dsmigrate migrate\` again to resume it, back it out with \`dsmigrate migrate <previous>\`, or, after changing its file, \`dsmigrate migrate --restart ${r.app}:${r.name}\`.\n`,
        );
      }
      if (runs.length > 0) {
        process.stdout.write(
          `\nLast Cloud Tasks runs:\n${table(
            ['RUN', 'STATUS', 'DIRECTION', 'MIGRATIONS', 'STARTED'],
            runs.map((r) => [r.id, r.status, r.direction, r.migrations.join(' '), r.createdAt]),
          )}\n`,
        );
        for (const r of runs.filter((x) => x.error && x.status !== 'done')) process.stdout.write(`${r.id} ${r.status}: ${r.error}\n`);
      }
    } finally {
      await ctx.close();
    }
  },
};
