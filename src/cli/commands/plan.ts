import type { CommandModule } from 'yargs';
import { planRun, Recorder, stepsFor } from '../../migrations';
import { openContext } from '../context';
import { jsonLine } from '../output';
import type { GlobalFlags } from '../flags';

interface PlanFlags extends GlobalFlags {
  target?: string;
}

export const planCommand: CommandModule<GlobalFlags, PlanFlags> = {
  command: 'plan [target]',
  describe: 'List what `migrate` would run, in order, with entity counts where cheap',
  builder: (y) => y.positional('target', { type: 'string', describe: 'As for migrate' }),
  handler: async (argv) => {
    const ctx = await openContext(argv);
    try {
      const records = await new Recorder(ctx.store, ctx.config.controlNamespace).list();
      const { direction, migrations } = planRun(ctx.graph, records, argv.target);
      const plan = [];
      for (const m of migrations) {
        const operations = [];
        // The steps `migrate` would take: going back, only operations that ran, each reversed (or the refusal).
        for (const { index, operation: shown } of stepsFor(m, direction, records.get(m.id))) {
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
