import { writeFileSync } from 'node:fs';
import type { CommandModule } from 'yargs';
import { loadGraph, squashMigrations } from '../../migrations';
import { resolveConfig } from '../config';
import { jsonLine } from '../output';
import type { GlobalFlags } from '../flags';

interface SquashFlags extends GlobalFlags {
  app: string;
  from: string;
  to: string;
  name?: string;
}

export const squashCommand: CommandModule<GlobalFlags, SquashFlags> = {
  command: 'squash <app> <from> <to>',
  describe: "Write one migration that replaces a range of an app's migrations (docs/squashing.md)",
  builder: (y) =>
    y
      .positional('app', { type: 'string', demandOption: true, describe: "The app label ('default' for a single migrations directory)" })
      .positional('from', { type: 'string', demandOption: true, describe: 'The first migration to replace: its name or number' })
      .positional('to', { type: 'string', demandOption: true, describe: 'The last migration to replace: its name or number' })
      .option('name', { type: 'string', describe: 'The file name after the number (default: squashed_<the last one>)' }),
  handler: async (argv) => {
    const config = await resolveConfig(argv);
    const squashed = squashMigrations(await loadGraph(config.sources), argv.app, argv.from, argv.to, argv.name);
    writeFileSync(squashed.file, squashed.source, { flag: 'wx' });
    const replaced = squashed.replaces.map((m) => m.id);
    if (argv.json) {
      jsonLine({ created: squashed.file, replaces: replaced, dropped: squashed.dropped.length, references: squashed.references.length });
      return;
    }
    const out = (line: string) => process.stdout.write(`${line}\n`);
    out(`Created ${squashed.file}, replacing ${replaced.length} migrations (${replaced.join(', ')}).`);
    if (squashed.dropped.length > 0) out(`Left out ${squashed.dropped.length} operation(s) that later ones make pointless: its header says which and why.`);
    if (squashed.references.length > 0) out(`${squashed.references.length} operation(s) hold functions and are imported from the replaced files: copy them in before deleting those files.`);
    out('Release it beside the replaced files; delete those once every store has run past them (docs/squashing.md).');
  },
};
