import type { Argv, CommandModule } from 'yargs';
import { migrate, pendingPlan } from '../../migrations';
import { migrateWithCloudTasks } from '../cloud-tasks';
import { openContext, type CliContext } from '../context';
import { createReporter, jsonLine, outputMode } from '../output';
import { nonNegativeSeconds, positiveRate, type GlobalFlags } from '../flags';
import { LocalExecutor } from '../../executors';
import { undoNamespaces, UNDO_CONFLICTS, type UndoConflicts } from '../../operations';
import { pruneBeforeImages } from '../../sharding';

interface MigrateFlags extends GlobalFlags {
  target?: string;
  fake: boolean;
  dryRun: boolean;
  check: boolean;
  allowChanged: boolean;
  restart?: string[];
  waitLock: number;
  executor: 'local' | 'cloud-tasks';
  wait: boolean;
  maxRate?: number;
  strict: boolean;
  undoConflicts: UndoConflicts;
}

export const migrateCommand: CommandModule<GlobalFlags, MigrateFlags> = {
  command: 'migrate [target]',
  describe: 'Apply pending migrations (or go back to <target>)',
  builder: (y) =>
    y
      .positional('target', { type: 'string', describe: 'Stop at this migration (name, number or app:name); an applied one unapplies what came after it' })
      .option('fake', { type: 'boolean', default: false, describe: 'Record the migrations as applied without running them' })
      .option('dry-run', { type: 'boolean', default: false, describe: 'Run the per-entity logic without writing; report counts and samples' })
      .option('check', { type: 'boolean', default: false, describe: 'Exit 1 if any migration is pending; change nothing' })
      .option('allow-changed', { type: 'boolean', default: false, describe: 'Accept files edited after they were applied' })
      .option('restart', {
        type: 'string',
        array: true,
        nargs: 1,
        requiresArg: true,
        describe: "Forget a failed migration's state so that its fixed file runs from the start (repeatable); what it changed stays changed",
      })
      .option('wait-lock', { type: 'number', default: 0, coerce: nonNegativeSeconds('--wait-lock'), describe: 'Seconds to wait for another run to release the lock (else exit 3)' })
      .option('executor', { choices: ['local', 'cloud-tasks'], default: 'local', describe: 'Run shards in this process, or as Cloud Tasks on the worker (see docs/cloud-tasks.md)' })
      .option('max-rate', {
        type: 'number',
        coerce: positiveRate('--max-rate'),
        describe: 'Entities written per second, at most, by every operation that sets no rate of its own (see docs/operations.md, "Write rate")',
      })
      .option('strict', {
        type: 'boolean',
        default: false,
        describe: 'Refuse (exit 2, nothing changed) an operation whose kind has no entities, as a typo would make it; `strict: true` in the config does the same',
      })
      .option('undo-conflicts', {
        choices: UNDO_CONFLICTS,
        default: 'refuse',
        describe: 'Backing out from before-images: refuse entities the application changed since (name them, change nothing), overwrite them, or skip them (see docs/undo.md)',
      })
      .option('wait', { type: 'boolean', default: true, describe: 'With cloud-tasks: follow the run to its end (--no-wait returns once dispatched)' }) as unknown as Argv<MigrateFlags>, // yargs types omit the camelCase aliases it adds
  handler: async (argv) => {
    const ctx = await openContext(argv);
    const strict = argv.strict || ctx.config.strict;
    try {
      if (argv.check) {
        // Planned as `migrate` plans, so that a run it would refuse fails the check with that refusal.
        const { plan } = await pendingPlan(ctx.store, ctx.graph, ctx.config.controlNamespace, { target: argv.target, allowChanged: argv.allowChanged });
        const pending = plan.migrations.map((p) => p.migration.id);
        if (argv.json) jsonLine({ pending });
        else process.stdout.write(pending.length ? `Pending: ${pending.join(', ')}\n` : 'No migrations pending.\n');
        process.exitCode = pending.length ? 1 : 0;
        return;
      }
      const reporter = createReporter(outputMode(argv.json));
      try {
        // Fake and dry runs write no data: they stay in this process whatever the executor.
        if (argv.executor === 'cloud-tasks' && !argv.fake && !argv.dryRun) {
          await migrateWithCloudTasks(ctx, { ...argv, strict }, reporter);
          // Followed to its end (it threw otherwise): this process prunes, as after a local run.
          if (argv.wait) await pruneExpiredImages(ctx);
          return;
        }
        const summary = await migrate(
          {
            store: ctx.store,
            graph: ctx.graph,
            executor: argv.maxRate === undefined ? ctx.executor : new LocalExecutor({ concurrency: ctx.config.concurrency, maxEntitiesPerSecond: argv.maxRate }),
            controlNamespace: ctx.config.controlNamespace,
          },
          {
            target: argv.target,
            fake: argv.fake,
            dryRun: argv.dryRun,
            allowChanged: argv.allowChanged,
            restart: argv.restart,
            lockWaitMs: argv.waitLock * 1000,
            lockTtlMs: ctx.config.lockTtlMs,
            strict,
            undoConflicts: argv.undoConflicts,
            onEvent: (e) => reporter.event(e),
          },
        );
        if (!argv.dryRun && !argv.fake) await pruneExpiredImages(ctx);
        if (argv.json) jsonLine({ event: 'summary', ...summary });
      } finally {
        reporter.close();
      }
    } finally {
      await ctx.close();
    }
  },
};

/** Before-images past their retention go once a run finished: they can no longer be restored (docs/undo.md). */
async function pruneExpiredImages(ctx: CliContext): Promise<void> {
  await pruneBeforeImages(
    ctx.store,
    await undoNamespaces(
      ctx.store,
      ctx.graph.ordered.flatMap((m) => m.definition.operations),
    ),
  );
}
