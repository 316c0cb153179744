import type { CommandModule } from 'yargs';
import { isApplied, Recorder, type MigrationRecord } from '../../migrations';
import { openContext } from '../context';
import { jsonLine, table } from '../output';
import type { GlobalFlags } from '../flags';

export interface StatusRow {
  app: string;
  name: string;
  state: MigrationRecord['state'];
  progress: string;
  appliedAt?: string;
  error?: string;
  /** The record exists but its file is gone. */
  missingFile?: boolean;
  operations?: MigrationRecord['operations'];
}

function progressOf(record: MigrationRecord | undefined, operations: number): string {
  if (!record) return `0/${operations} ops`;
  if (isApplied(record)) return `${operations}/${operations} ops`;
  const current = record.operations[record.operationsDone];
  const shards = current && current.shardsTotal ? `, shards ${current.shardsDone}/${current.shardsTotal}, ${current.scanned} scanned` : '';
  return `${record.operationsDone}/${record.operations.length || operations} ops${shards}`;
}

export const statusCommand: CommandModule<GlobalFlags, GlobalFlags> = {
  command: 'status',
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
          progress: progressOf(r, m.definition.operations.length),
          appliedAt: r && isApplied(r) ? r.finishedAt?.toISOString() : undefined,
          error: r?.error,
          operations: r?.operations,
        };
      });
      for (const [id, r] of records) {
        if (!ctx.graph.byId.has(id)) rows.push({ app: r.app, name: r.name, state: r.state, progress: progressOf(r, r.operations.length), appliedAt: r.finishedAt?.toISOString(), missingFile: true });
      }
      if (argv.json) {
        jsonLine(rows);
        return;
      }
      process.stdout.write(
        `${table(
          ['APP', 'NAME', 'STATE', 'PROGRESS', 'APPLIED'],
          rows.map((r) => [r.app, r.name + (r.missingFile ? ' (file missing)' : ''), r.state, r.progress, r.appliedAt ?? '']),
        )}\n`,
      );
      for (const r of rows.filter((x) => x.error)) process.stdout.write(`\n${r.app}:${r.name} failed: ${r.error}\n`);
    } finally {
      await ctx.close();
    }
  },
};
