import type { CommandModule } from 'yargs';
import { DsMigrateError } from '../../errors';
import { verifyMigrations } from '../../executors';
import { openContext } from '../context';
import { createReporter, jsonLine, outputMode } from '../output';
import type { GlobalFlags } from '../flags';

interface VerifyFlags extends GlobalFlags {
  migration?: string;
  strict: boolean;
}

export const verifyCommand: CommandModule<GlobalFlags, VerifyFlags> = {
  command: 'verify [migration]',
  describe: "Re-scan what applied migrations touched and check each operation's postcondition (exit 1 on any offending entity)",
  builder: (y) =>
    y
      .positional('migration', { type: 'string', describe: 'Only this applied migration (name, number or app:name)' })
      .option('strict', { type: 'boolean', default: false, describe: "As for migrate: exit 2 when an operation's kind has no entities" }),
  handler: async (argv) => {
    const ctx = await openContext(argv);
    const reporter = createReporter(outputMode(argv.json));
    try {
      const report = await verifyMigrations({
        store: ctx.store,
        graph: ctx.graph,
        controlNamespace: ctx.config.controlNamespace,
        target: argv.migration,
        concurrency: ctx.config.concurrency,
        onEvent: (e) => reporter.event(e),
      });
      reporter.close();
      process.exitCode = report.ok ? 0 : 1;
      if (argv.json) jsonLine({ event: 'summary', ...report });
      for (const v of argv.json ? [] : report.verdicts) {
        const what = `${v.migration} #${v.operation + 1} ${v.description}`;
        if (v.emptyKind) process.stdout.write(`warning      ${v.emptyKind}\n`);
        if (!v.verifiable) process.stdout.write(`not checked  ${what}: declare {verify: (entity) => boolean} to check it\n`);
        else if (v.failed === 0) process.stdout.write(`ok           ${what}: ${v.scanned} entities\n`);
        else {
          process.stdout.write(`FAILED       ${what}: ${v.failed} of ${v.scanned} entities\n`);
          for (const s of v.samples) process.stdout.write(`               ${s.key} ${s.problem}\n`);
          if (v.failed > v.samples.length) process.stdout.write(`               ... and ${v.failed - v.samples.length} more\n`);
        }
      }
      if (report.verdicts.length === 0 && !argv.json) process.stdout.write('No applied migrations to verify.\n');
      const empty = report.verdicts.filter((v) => v.emptyKind);
      if ((argv.strict || ctx.config.strict) && empty.length > 0) {
        throw new DsMigrateError('BAD_INPUT', `${empty.length} operation(s) checked nothing, their kind having no entities (--strict): ${empty.map((v) => v.emptyKind).join('; ')}.`, {
          migration: empty[0].migration,
        });
      }
    } finally {
      reporter.close();
      await ctx.close();
    }
  },
};
