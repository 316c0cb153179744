import type { Argv, CommandModule } from 'yargs';
import { describeStep, emptyScopeMessage, emptyScopes, pendingPlan, refuseEmptyScopes } from '../../migrations';
import { canBackOut, isDataOperation } from '../../operations';
import { openContext } from '../context';
import { jsonLine } from '../output';
import type { GlobalFlags } from '../flags';

interface PlanFlags extends GlobalFlags {
  target?: string;
  allowChanged: boolean;
  strict: boolean;
}

export const planCommand: CommandModule<GlobalFlags, PlanFlags> = {
  command: 'plan [target]',
  describe: 'List what `migrate` would run, in order, with entity counts where cheap',
  builder: (y) =>
    y
      .positional('target', { type: 'string', describe: 'As for migrate' })
      .option('allow-changed', { type: 'boolean', default: false, describe: 'As for migrate: accept files edited after they were applied' })
      .option('strict', { type: 'boolean', default: false, describe: "As for migrate: exit 2 when an operation's kind has no entities" }) as unknown as Argv<PlanFlags>, // yargs types omit the camelCase aliases it adds
  handler: async (argv) => {
    const ctx = await openContext(argv);
    try {
      const { plan: pending } = await pendingPlan(ctx.store, ctx.graph, ctx.config.controlNamespace, { target: argv.target, allowChanged: argv.allowChanged, markIrreversible: true });
      const { direction, migrations } = pending;
      const empty = await emptyScopes(ctx.store, pending);
      const plan = [];
      for (const { migration: m, steps } of migrations) {
        const operations = [];
        // The steps `migrate` would take: going back, only operations that ran, each reversed, left as
        // they are (reverse: 'noop'), or marked irreversible: `migrate` refuses the back-out until it is settled.
        for (const step of steps) {
          const { index, operation: shown } = step;
          // Counting is one aggregation query where the backend has it, and skipped where it would mean a scan.
          const entities = isDataOperation(shown) ? await ctx.store.count({ kind: shown.kind }) : undefined;
          const forward = m.definition.operations[index];
          const description = describeStep(step);
          const emptyKind = empty.find((e) => e.migration === m.id && e.description === description);
          // Going forward, an operation kept with undo writes one before-image per entity it changes: at most one per entity scanned.
          const keeps = direction === 'forward' && isDataOperation(shown) && shown.undo !== undefined;
          operations.push({
            ...shown.toJSON(),
            description,
            reversible: canBackOut(forward) || forward.leavesDataOnBackOut,
            entities,
            ...(keeps ? { beforeImages: { retain: shown.undo!.retain, atMostWrites: entities } } : {}),
            ...(emptyKind ? { emptyKind: emptyScopeMessage(emptyKind) } : {}),
          });
        }
        plan.push({ id: m.id, file: m.file, direction, description: m.definition.description, operations });
      }
      if (argv.json) jsonLine(plan);
      else printPlan(plan, direction, empty.map(emptyScopeMessage), argv.target);
      if (argv.strict || ctx.config.strict) refuseEmptyScopes(empty);
    } finally {
      await ctx.close();
    }
  },
};

type ShownMigration = {
  id: string;
  description?: string;
  operations: { description: string; entities?: number; reversible: boolean; beforeImages?: { retain: string; atMostWrites?: number } }[];
};

function printPlan(plan: ShownMigration[], direction: 'forward' | 'reverse', warnings: string[], target: string | undefined): void {
  const out = (line: string) => process.stdout.write(`${line}\n`);
  if (plan.length === 0) out('Nothing to do: every migration is applied.');
  for (const [i, m] of plan.entries()) {
    out(`${i + 1}. ${direction === 'reverse' ? 'unapply ' : ''}${m.id}${m.description ? ` - ${m.description}` : ''}`);
    for (const op of m.operations) {
      out(`     ${op.description}${op.entities !== undefined ? ` (${op.entities} entities, default namespace)` : ''}`);
      const images = op.beforeImages;
      if (images)
        out(
          `       keeps before-images for ${images.retain}: ${images.atMostWrites !== undefined ? `up to ${images.atMostWrites} more writes` : 'one more write'} (one per entity it changes), each the entity's stored size; \`dsmigrate migrate --dry-run\` measures both`,
        );
    }
  }
  if (direction === 'reverse' && plan.some((m) => m.operations.some((op) => !op.reversible))) {
    out(
      "\n`dsmigrate migrate` refuses this back-out: the IRREVERSIBLE operations above changed data and have no reverse. Declare `reverse: 'noop'` on each to back out leaving its data as it is, " +
        `or record the migrations unapplied without changing any data: \`dsmigrate migrate ${target ?? '<target>'} --fake\`.`,
    );
  }
  for (const w of warnings) out(`warning: ${w}`);
}
