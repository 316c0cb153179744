import type { Argv, CommandModule } from 'yargs';
import { pendingPlan } from '../../migrations';
import { openContext } from '../context';
import { jsonLine } from '../output';
import type { GlobalFlags } from '../flags';

interface PlanFlags extends GlobalFlags {
  target?: string;
  allowChanged: boolean;
}

export const planCommand: CommandModule<GlobalFlags, PlanFlags> = {
  command: 'plan [target]',
  describe: 'List what `migrate` would run, in order, with entity counts where cheap',
  builder: (y) =>
    y
      .positional('target', { type: 'string', describe: 'As for migrate' })
      .option('allow-changed', { type: 'boolean', default: false, describe: 'As for migrate: accept files edited after they were applied' }) as unknown as Argv<PlanFlags>, // yargs types omit the camelCase aliases it adds
  handler: async (argv) => {
    const ctx = await openContext(argv);
    try {
      const {
        plan: { direction, migrations },
      } = await pendingPlan(ctx.store, ctx.graph, ctx.config.controlNamespace, { target: argv.target, allowChanged: argv.allowChanged });
      const plan = [];
      for (const { migration: m, steps } of migrations) {
        const operations = [];
        // The steps `migrate` would take: going back, only operations that ran, each reversed.
        for (const { index, operation: shown } of steps) {
          // Counting is one aggregation query where the backend has it, and skipped where it would mean a scan.
          const entities = await ctx.store.count({ kind: shown.kind });
          operations.push({ description: shown.describe(), reversible: m.definition.operations[index].reversible, entities, ...shown.toJSON() });
        }
        plan.push({ id: m.id, file: m.file, direction, description: m.definition.description, operations });
      }
      if (argv.json) {
        jsonLine(plan);
        return;
      }
      if (plan.length === 0) process.stdout.write('Nothing to do: every migration is applied.\n');
      for (const [i, m] of plan.entries()) {
        process.stdout.write(`${i + 1}. ${direction === 'reverse' ? 'unapply ' : ''}${m.id}${m.description ? ` - ${m.description}` : ''}\n`);
        for (const op of m.operations) process.stdout.write(`     ${op.description}${op.entities !== undefined ? ` (${op.entities} entities, default namespace)` : ''}\n`);
      }
    } finally {
      await ctx.close();
    }
  },
};
