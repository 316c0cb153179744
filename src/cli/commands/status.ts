import type { CommandModule } from 'yargs';
import type { Datastore } from '../../datastore';
import { DsMigrateError } from '../../errors';
import {
  closingReason,
  historyProblems,
  inEffect,
  isApplied,
  leaseProblem,
  operationsDone,
  recentRuns,
  Recorder,
  recoveryAdvice,
  stepCounts,
  type MigrationGraph,
  type MigrationRecord,
  type MigrationState,
  type RunState,
} from '../../migrations';
import { undoNamespaces } from '../../operations';
import { undoHoldings, type JobCounts } from '../../sharding';
import { openContext } from '../context';
import { createReporter, formatCounts, jsonLine, outputMode, table } from '../output';
import type { GlobalFlags } from '../flags';
import { watchRun } from '../watch';

export interface StatusRow {
  app: string;
  name: string;
  state: MigrationState | 'pending';
  /** 'reverse' while being unapplied. */
  direction?: MigrationRecord['direction'];
  /** The target of the run that began it. */
  target?: string;
  progress: string;
  appliedAt?: string;
  error?: string;
  /** The record exists but its file is gone. */
  missingFile?: boolean;
  /** A runtime model's schema migration, recorded with the two versions it moves between. */
  schema?: boolean;
  /** A squashed migration in use: how many migrations it replaces (applied when they all are: docs/squashing.md). */
  replaces?: number;
  operations?: { type: string; kind: string; applied: 'all' | 'none' | 'part'; scanned: number; changed: number; deleted: number; shardsDone: number; shardsTotal: number }[];
  /** The before-images its operations keep (docs/undo.md): images not yet restored, their bytes, and until when a back-out can restore them. */
  undo?: { kept: number; restored: number; bytes: number; until?: string };
}

/**
 * Each migration's before-images, summed over its operations. Read only where the migrations keep any (an
 * operation with `undo`): reading them scans the images, a cost only undo's users pay.
 */
async function addUndoHoldings(store: Datastore, graph: MigrationGraph, rows: StatusRow[]): Promise<void> {
  const namespaces = await undoNamespaces(
    store,
    graph.ordered.flatMap((m) => m.definition.operations),
  );
  if (namespaces.length === 0) return;
  const byMigration = new Map<string, NonNullable<StatusRow['undo']>>();
  for (const h of await undoHoldings(store, namespaces)) {
    const migration = h.operation.slice(0, h.operation.lastIndexOf('#'));
    const sum = byMigration.get(migration) ?? { kept: 0, restored: 0, bytes: 0 };
    sum.kept += h.kept;
    sum.restored += h.restored;
    sum.bytes += h.bytes;
    // A back-out is refused once its first kept image expired: that is how long the migration stays restorable.
    const first = h.firstExpiry?.toISOString();
    if (first && (!sum.until || first < sum.until)) sum.until = first;
    byMigration.set(migration, sum);
  }
  for (const row of rows) {
    const held = byMigration.get(`${row.app}:${row.name}`);
    if (held) row.undo = held;
  }
}

/** The run under way, as `status` shows it: where it is, its step's counts, rate and time left, and what it waits on. */
export interface CurrentRunView {
  id: string;
  driver: RunState['driver'];
  direction: RunState['direction'];
  command: string;
  migration: string;
  /** 1-based, of `steps`. */
  step: number;
  steps: number;
  description?: string;
  counts?: JobCounts;
  /** Entities scanned per second since the step started. */
  rate?: number;
  /** Seconds left at that rate, where the total is known. */
  etaSeconds?: number;
  waiting?: { reason: string; attempts: number; since: string };
  /** Set once every shard of the step is done and the step is not yet recorded complete: what records it. */
  closing?: string;
  /** Set when the run no longer holds the lease (its process stopped, or the lease was broken or lapsed). */
  leaseProblem?: string;
}

export interface EndedRunView {
  id: string;
  driver: RunState['driver'];
  status: RunState['status'];
  direction: RunState['direction'];
  migrations: string[];
  createdAt: string;
  finishedAt?: string;
  error?: string;
}

/** The app of runtime models' schema migrations (src/dynamic/schema-run.ts). */
const SCHEMA_APP = 'schema';

/** How many ended runs `status` lists. */
const RUNS_SHOWN = 5;

function progressOf(record: MigrationRecord | undefined, operations: number): string {
  if (!record) return `0/${operations} ops`;
  if (isApplied(record)) return `${operations}/${operations} ops`;
  return `${operationsDone(record)}/${record.operations.length || operations} ops${record.direction === 'reverse' ? ' undone' : ''}`;
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

/** The current run's view, with its step's counts read from the job's checkpoints (never pushed into a shared entity). */
async function currentRun(store: Datastore, run: RunState): Promise<CurrentRunView> {
  const planned = run.migrations[Math.min(run.current, run.migrations.length - 1)];
  const view: CurrentRunView = {
    id: run.id,
    driver: run.driver,
    direction: run.direction,
    command: run.command,
    migration: planned.id,
    step: Math.min(run.step, planned.steps.length - 1) + 1,
    steps: planned.steps.length,
    description: planned.descriptions[run.step],
    waiting: run.waiting && { ...run.waiting, since: run.waiting.since.toISOString() },
  };
  const step = await stepCounts(store, run);
  if (step) {
    const { counts, complete } = step;
    view.counts = counts;
    const seconds = run.stepStartedAt ? (Date.now() - run.stepStartedAt.getTime()) / 1000 : 0;
    if (seconds > 0) view.rate = Math.round(counts.scanned / seconds);
    // No time left to estimate once the shards are done: what remains is the step's closing, said instead.
    if (complete) view.closing = closingReason(run);
    else if (view.rate && counts.estimatedTotal !== undefined) view.etaSeconds = Math.max(0, Math.round((counts.estimatedTotal - counts.scanned) / view.rate));
  }
  view.leaseProblem = await leaseProblem(store, run);
  return view;
}

function printCurrent(view: CurrentRunView): void {
  const out = (line: string) => process.stdout.write(`${line}\n`);
  out(
    `\nRun ${view.id} (${view.driver}, ${view.direction === 'forward' ? 'applying' : 'backing out'}): ${view.migration}, step ${view.step}/${view.steps}${view.description ? `: ${view.description}` : ''}`,
  );
  if (view.counts) {
    const total = view.counts.estimatedTotal !== undefined ? ` of ~${view.counts.estimatedTotal}` : '';
    const eta = view.etaSeconds !== undefined ? `, about ${view.etaSeconds} s left` : '';
    out(`  ${formatCounts(view.counts)}${total}; shards ${view.counts.shardsDone}/${view.counts.shardsTotal}${view.rate !== undefined ? `; ${view.rate} entities/s${eta}` : ''}`);
  }
  if (view.closing) out(`  waiting: ${view.closing}`);
  if (view.waiting) out(`  waiting since ${view.waiting.since}: ${view.waiting.reason}`);
  if (view.leaseProblem) out(`  stopped: it ${view.leaseProblem}`);
  out(`  \`dsmigrate status --watch\` follows it.`);
}

interface StatusFlags extends GlobalFlags {
  runs: boolean;
  watch: boolean;
  run?: string;
}

export const statusCommand: CommandModule<GlobalFlags, StatusFlags> = {
  command: 'status',
  builder: (y) =>
    y
      .option('runs', { type: 'boolean', default: false, describe: 'With --json: print {migrations, current, runs}: the run under way and the last ended runs too' })
      .option('watch', { type: 'boolean', default: false, describe: 'Attach to the run under way (started by any process or machine) and follow it to its end; Ctrl-C detaches' })
      .option('run', { type: 'string', describe: 'With --watch: the run to follow (default: the one under way)' }),
  describe: 'Show every migration with its state, the run under way and the last runs; --watch follows a run',
  handler: async (argv) => {
    const ctx = await openContext(argv);
    try {
      const namespace = ctx.config.controlNamespace;
      const runs = await recentRuns(ctx.store, namespace);
      const running = runs.find((r) => r.status === 'running');
      if (argv.watch) {
        const id = argv.run ?? running?.id;
        if (!id) throw new DsMigrateError('BAD_INPUT', 'No run is under way to watch. `dsmigrate status` lists the last runs; pass --run <id> to follow one by id.', { field: '--run' });
        const say = (line: string) => (argv.json ? undefined : process.stderr.write(`${line}\n`));
        say(`Watching run ${id} (Ctrl-C detaches; the run goes on).`);
        const summary = await watchRun(ctx, id, createReporter(outputMode(argv.json)), argv.json);
        if (summary && argv.json) jsonLine({ event: 'summary', ...summary });
        return;
      }
      const { graph, records } = inEffect(ctx.graph, await new Recorder(ctx.store, namespace).list());
      const replaced = new Set([...(graph.replacements?.values() ?? [])].flat());
      const rows: StatusRow[] = graph.ordered.map((m) => {
        const r = records.get(m.id);
        return {
          app: m.app,
          name: m.name,
          state: r?.state ?? 'pending',
          direction: r?.direction,
          target: r?.target,
          progress: progressOf(r, m.definition.operations.length),
          appliedAt: r && isApplied(r) ? r.finishedAt?.toISOString() : undefined,
          error: r?.error,
          operations: operationsOf(r),
          ...(m.replaces ? { replaces: m.replaces.length } : {}),
        };
      });
      for (const [id, r] of records) {
        // A replaced migration's record, its file kept or deleted, is accounted for by the squashed migration or by its own row.
        if (graph.byId.has(id) || replaced.has(id)) continue;
        // A runtime model's schema migration (app `schema`, src/dynamic/schema-run.ts) has no file by design.
        const schema = r.app === SCHEMA_APP;
        rows.push({
          app: r.app,
          name: r.name,
          state: r.state,
          direction: r.direction,
          target: r.target,
          progress: progressOf(r, r.operations.length),
          appliedAt: r.finishedAt?.toISOString(),
          error: r.error,
          ...(schema ? { schema } : { missingFile: true }),
        });
      }
      await addUndoHoldings(ctx.store, graph, rows);
      const current = running && (await currentRun(ctx.store, running));
      const inconsistent = historyProblems(graph, records);
      const ended: EndedRunView[] = runs
        .filter((r) => r.status !== 'running')
        .slice(0, RUNS_SHOWN)
        .map((r) => ({
          id: r.id,
          driver: r.driver,
          status: r.status,
          direction: r.direction,
          migrations: r.migrations.map((m) => m.id),
          createdAt: r.createdAt.toISOString(),
          finishedAt: r.finishedAt?.toISOString(),
          error: r.error,
        }));
      if (argv.json) {
        jsonLine(argv.runs ? { migrations: rows, current: current ?? null, runs: ended, inconsistent } : rows);
        return;
      }
      process.stdout.write(
        `${table(
          ['APP', 'NAME', 'STATE', 'PROGRESS', 'APPLIED'],
          rows.map((r) => [
            r.app,
            r.name + (r.missingFile ? ' (file missing)' : r.schema ? ' (runtime model)' : r.replaces ? ` (replaces ${r.replaces} migrations)` : ''),
            r.state,
            r.progress,
            r.appliedAt ?? '',
          ]),
        )}\n`,
      );
      // A record's error is its own last failure, cleared when it runs again: never an old run's.
      for (const r of rows.filter((x) => x.error)) {
        const id = `${r.app}:${r.name}`;
        const record = records.get(id)!;
        process.stdout.write(`\n${id} failed: ${r.error}\n${recoveryAdvice(id, { direction: record.direction, target: record.target, code: record.errorCode })}\n`);
      }
      const undo = rows.filter((r) => r.undo);
      if (undo.length > 0) {
        process.stdout.write(
          `\nUndo data (before-images, docs/undo.md):\n${table(
            ['APP', 'NAME', 'KEPT', 'RESTORED', 'BYTES', 'RESTORABLE UNTIL'],
            undo.map((r) => [r.app, r.name, String(r.undo!.kept), String(r.undo!.restored), r.undo!.bytes.toLocaleString('en-US'), r.undo!.until ?? '']),
          )}\n`,
        );
      }
      for (const p of inconsistent) {
        process.stdout.write(
          `\nInconsistent history: ${p.migration} is applied, but its dependency ${p.dependency} is not; \`dsmigrate migrate\` refuses to run until the records say which is true. ` +
            `If ${p.dependency}'s changes are in the data: \`dsmigrate migrate ${p.dependency} --fake\`; otherwise: \`dsmigrate migrate ${p.before} --fake\`.\n`,
        );
      }
      if (current) printCurrent(current);
      if (ended.length > 0) {
        process.stdout.write(
          `\nLast runs:\n${table(
            ['RUN', 'DRIVER', 'STATUS', 'DIRECTION', 'MIGRATIONS', 'STARTED'],
            ended.map((r) => [r.id, r.driver, r.status, r.direction, r.migrations.join(' '), r.createdAt]),
          )}\n`,
        );
      }
    } finally {
      await ctx.close();
    }
  },
};
