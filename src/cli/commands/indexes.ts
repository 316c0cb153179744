import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { DsMigrateError } from '../../errors';
import { indexYaml, loadModels, sortIndexes } from '../../model';
import { modelModules } from '../config';
import type { GlobalFlags } from '../flags';
import { jsonLine } from '../output';

interface IndexesFlags extends GlobalFlags {
  models?: string[];
  out: string;
  check: boolean;
}

export const indexesCommand: CommandModule<GlobalFlags, IndexesFlags> = {
  command: 'indexes',
  describe: "Write index.yaml (gcloud's format) from the composite indexes the app's models declare",
  builder: (y) =>
    y
      .option('models', { type: 'string', array: true, nargs: 1, requiresArg: true, describe: 'Modules or directories defining the models (default: models in the config file)' })
      .option('out', { type: 'string', default: 'index.yaml', describe: 'File to write, or to compare with --check' })
      .option('check', { type: 'boolean', default: false, describe: 'Exit 1 if the file differs from the models; write nothing' }) as unknown as Argv<IndexesFlags>,
  handler: async (argv) => {
    const cwd = process.cwd();
    const paths = await modelModules(argv, cwd);
    if (paths.length === 0) {
      throw new DsMigrateError('BAD_INPUT', "No models to read: list the modules that define them in dsmigrate.config (models: ['src/models.ts']) or pass --models src/models.ts.");
    }
    const indexes = sortIndexes(loadModels(paths).flatMap((model) => model.indexes));
    const yaml = indexYaml(indexes);
    const out = path.resolve(cwd, argv.out);
    if (argv.check) {
      const upToDate = existsSync(out) && readFileSync(out, 'utf8') === yaml;
      if (argv.json) jsonLine({ file: out, upToDate, indexes });
      else if (upToDate) process.stdout.write(`${out} matches the models' ${indexes.length} composite index(es).\n`);
      else process.stderr.write(`${out} ${existsSync(out) ? 'differs from' : 'is missing'} the models' ${indexes.length} composite index(es): run dsmigrate indexes to rewrite it.\n`);
      process.exitCode = upToDate ? 0 : 1;
      return;
    }
    writeFileSync(out, yaml);
    if (argv.json) jsonLine({ file: out, written: true, indexes });
    else process.stdout.write(`Wrote ${indexes.length} composite index(es) to ${out}.\n`);
  },
};
