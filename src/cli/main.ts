#!/usr/bin/env node
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { DsMigrateError, errorMessage } from '../errors';
import { createCommand } from './commands/create';
import { emulatorCommand } from './commands/emulator';
import { indexesCommand } from './commands/indexes';
import { introspectCommand } from './commands/introspect';
import { migrateCommand } from './commands/migrate';
import { planCommand } from './commands/plan';
import { schemaCommand } from './commands/schema';
import { statusCommand } from './commands/status';
import { unlockCommand } from './commands/unlock';
import { verifyCommand } from './commands/verify';
import { workerCommand } from './commands/worker';
import { globalFlags } from './flags';
import { keepHeapSmall } from './memory';
import { jsonLine } from './output';

/** Exit codes: 0 done, 1 failed, 2 bad usage or input, 3 another run holds the lock. */
export async function main(argv: string[] = hideBin(process.argv)): Promise<number> {
  const json = argv.includes('--json');
  try {
    await globalFlags(yargs(argv))
      .scriptName('dsmigrate')
      .command(migrateCommand)
      .command(statusCommand)
      .command(planCommand)
      .command(createCommand)
      .command(unlockCommand)
      .command(verifyCommand)
      .command(workerCommand)
      .command(introspectCommand)
      .command(indexesCommand)
      .command(schemaCommand)
      .command(emulatorCommand)
      .demandCommand(1, 'Name a command: migrate, status, plan, verify, create, unlock, introspect, indexes, schema, worker, emulator.')
      .strict()
      .help()
      .fail((message, error) => {
        // yargs wraps a coerce's error (--wait-lock abc) in a YError: that is bad usage too, exit 2.
        throw error && error.name !== 'YError' ? error : new DsMigrateError('BAD_INPUT', error?.message ?? message);
      })
      .parseAsync();
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    const code = error instanceof DsMigrateError ? error.exitCode : 1;
    if (json) jsonLine({ error: errorMessage(error), code: error instanceof DsMigrateError ? error.code : 'INTERNAL', context: error instanceof DsMigrateError ? error.context : undefined });
    else process.stderr.write(`dsmigrate: ${error instanceof DsMigrateError ? error.message : ((error as Error)?.stack ?? String(error))}\n`);
    return code;
  }
}

if (require.main === module) {
  keepHeapSmall();
  main().then((code) => process.exit(code));
}
