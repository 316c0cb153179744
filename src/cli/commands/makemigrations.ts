import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { DsMigrateError } from '../../errors';
import { makeMigration } from '../../migrations';
import { loadModels } from '../../model';
import { modelModules, resolveConfig } from '../config';
import type { GlobalFlags } from '../flags';
import { jsonLine } from '../output';

interface MakeMigrationsFlags extends GlobalFlags {
  name?: string;
  app?: string;
  models?: string[];
  check: boolean;
  dryRun: boolean;
  rename: boolean;
  indexYaml: string;
}

export const makemigrationsCommand: CommandModule<GlobalFlags, MakeMigrationsFlags> = {
  command: 'makemigrations',
  describe: 'Write the next migration from what changed in the models since the state the migrations record',
  builder: (y) =>
    y
      .option('name', { type: 'string', describe: 'Words for the file name (default: from the first change)' })
      .option('app', { type: 'string', describe: 'The app whose migrations record the models, when there are several' })
      .option('models', { type: 'string', array: true, nargs: 1, requiresArg: true, describe: 'Modules or directories defining the models (default: models in the config file)' })
      .option('check', { type: 'boolean', default: false, describe: 'Exit 1 if the models changed with no migration for it; write nothing (for CI)' })
      .option('dry-run', { type: 'boolean', default: false, describe: 'Print the file instead of writing it' })
      .option('rename', { type: 'boolean', default: true, describe: 'With --no-rename, a field or kind gone and another new are a removal plus an addition' })
      .option('index-yaml', { type: 'string', default: 'index.yaml', describe: 'index.yaml to write again when the composite indexes change' }) as unknown as Argv<MakeMigrationsFlags>,
  handler: async (argv) => {
    const cwd = process.cwd();
    const config = await resolveConfig(argv);
    if (argv.check && argv.dryRun)
      throw new DsMigrateError('BAD_INPUT', '--check and --dry-run do not go together: --check writes nothing already, and says only whether a migration is missing.', { flag: '--check' });
    const app = argv.app ?? config.sources[0].app;
    if (!argv.app && config.sources.length > 1) {
      throw new DsMigrateError('BAD_INPUT', `There are several apps (${config.sources.map((s) => s.app).join(', ')}): choose the one whose migrations record the models with --app.`, {
        flag: '--app',
      });
    }
    const paths = await modelModules(argv, cwd);
    if (paths.length === 0) {
      throw new DsMigrateError('BAD_INPUT', "No models to read: list the modules that define them in dsmigrate.config (models: ['src/models.ts']) or pass --models src/models.ts.", {
        flag: '--models',
      });
    }
    const next = await makeMigration({ sources: config.sources, app, models: loadModels(paths), name: argv.name, noRename: !argv.rename });
    const indexFile = path.resolve(cwd, argv.indexYaml);
    if (!next) {
      if (argv.json) jsonLine({ app, changes: [], written: false, upToDate: true });
      else process.stdout.write(`No changes: the models match the state app "${app}"'s migrations record.\n`);
      return;
    }
    const report = {
      app,
      file: next.file,
      changes: next.changes,
      notes: next.notes,
      operations: next.operations.map((o) => ('operation' in o ? { description: o.operation.describe(), commentedOut: o.commentedOut === true } : o)),
    };
    if (argv.check) {
      if (argv.json) jsonLine({ ...report, upToDate: false, written: false });
      else
        process.stderr.write(
          `The models changed with no migration for it (app "${app}"):\n${next.changes.map((c) => `  - ${c}\n`).join('')}Run dsmigrate makemigrations to write ${path.basename(next.file)}.\n`,
        );
      process.exitCode = 1;
      return;
    }
    if (argv.dryRun) {
      if (argv.json) jsonLine({ ...report, written: false, dryRun: true, source: next.source, ...(next.indexYaml !== undefined && { indexYaml: { file: indexFile, text: next.indexYaml } }) });
      else process.stdout.write(`${next.source}${next.indexYaml !== undefined ? `\n# ${indexFile} would be written:\n${next.indexYaml}` : ''}`);
      return;
    }
    mkdirSync(path.dirname(next.file), { recursive: true });
    if (next.indexYaml !== undefined) mkdirSync(path.dirname(indexFile), { recursive: true });
    writeFileSync(next.file, next.source, { flag: 'wx' });
    if (next.indexYaml !== undefined) writeFileSync(indexFile, next.indexYaml);
    if (argv.json) jsonLine({ ...report, written: true, ...(next.indexYaml !== undefined && { indexYaml: indexFile }) });
    else {
      const lines = [`Wrote ${next.file}:`, ...next.changes.map((c) => `  - ${c}`), ...next.notes.map((n) => `  ! ${n}`)];
      if (next.indexYaml !== undefined) lines.push(`Wrote ${indexFile}: deploy it with gcloud datastore indexes create ${path.relative(cwd, indexFile) || indexFile}.`);
      process.stdout.write(`${lines.join('\n')}\n`);
    }
  },
};
