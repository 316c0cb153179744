import type { Argv, CommandModule } from 'yargs';
import { undoNamespaces } from '../../operations';
import { pruneBeforeImages, undoHoldings } from '../../sharding';
import { openContext, type CliContext } from '../context';
import { jsonLine } from '../output';
import type { GlobalFlags } from '../flags';

interface UndoFlags extends GlobalFlags {
  action: 'prune' | 'status';
  dryRun: boolean;
}

/** The namespaces where the migration files' operations keep before-images. */
function namespacesOf(ctx: CliContext): Promise<string[]> {
  return undoNamespaces(
    ctx.store,
    ctx.graph.ordered.flatMap((m) => m.definition.operations),
  );
}

export const undoCommand: CommandModule<GlobalFlags, UndoFlags> = {
  command: 'undo <action>',
  describe: 'Before-images kept by operations with {undo}: `status` shows what each operation holds and until when; `prune` removes those past their retention',
  builder: (y) =>
    y
      .positional('action', { choices: ['prune', 'status'], demandOption: true, describe: 'status, or prune' })
      .option('dry-run', { type: 'boolean', default: false, describe: 'prune: count what would be removed, remove nothing' }) as unknown as Argv<UndoFlags>,
  handler: async (argv) => {
    const ctx = await openContext(argv);
    try {
      const namespaces = await namespacesOf(ctx);
      if (argv.action === 'prune') {
        const result = await pruneBeforeImages(ctx.store, namespaces, { dryRun: argv.dryRun });
        if (argv.json) jsonLine({ expired: result.expired, operations: result.operations, dryRun: argv.dryRun });
        else
          process.stdout.write(
            `${argv.dryRun ? 'Would remove' : 'Removed'} ${result.expired} before-image(s) past their retention${result.operations.length ? ` (of ${result.operations.join(', ')})` : ''}.\n`,
          );
        return;
      }
      const holdings = await undoHoldings(ctx.store, namespaces);
      if (argv.json) jsonLine({ holdings });
      else if (holdings.length === 0) process.stdout.write('No before-images are kept.\n');
      else
        for (const h of holdings) {
          const where = h.namespace ? ` in namespace '${h.namespace}'` : '';
          const until = h.until ? `, restorable until ${h.firstExpiry!.toISOString()} (the last expire ${h.until.toISOString()})` : '';
          process.stdout.write(`${h.operation}${where}: ${h.kept} kept, ${h.restored} restored, ${h.bytes.toLocaleString('en-US')} bytes${until}\n`);
        }
    } finally {
      await ctx.close();
    }
  },
};
