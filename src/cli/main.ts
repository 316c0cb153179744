#!/usr/bin/env node
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { GrpcCode, grpcCode } from '../datastore';
import { DsMigrateError, errorMessage, type ErrorCode } from '../errors';
import { recoveryAdvice } from '../migrations';
import { createCommand } from './commands/create';
import { emulatorCommand } from './commands/emulator';
import { indexesCommand } from './commands/indexes';
import { introspectCommand } from './commands/introspect';
import { makemigrationsCommand } from './commands/makemigrations';
import { migrateCommand } from './commands/migrate';
import { planCommand } from './commands/plan';
import { schemaCommand } from './commands/schema';
import { squashCommand } from './commands/squash';
import { statusCommand } from './commands/status';
import { undoCommand } from './commands/undo';
import { unlockCommand } from './commands/unlock';
import { verifyCommand } from './commands/verify';
import { workerCommand } from './commands/worker';
import { checkBooleanValues, globalFlags } from './flags';
import { keepHeapSmall } from './memory';
import { jsonLine } from './output';

/** Failures of a migration as it ran, after which its record is `failed`: the message says how to go on. */
const RUN_FAILURES: readonly ErrorCode[] = ['MIGRATION_FAILED', 'OPERATION_FAILED', 'TYPE_MISMATCH', 'UNIQUE_VIOLATION', 'DATASTORE', 'STEP_ATTEMPTS_SPENT'];

function adviceFor(error: unknown): string | undefined {
  if (!(error instanceof DsMigrateError)) return undefined;
  const { grpcCode, migration, direction, target } = error.context;
  if (typeof grpcCode === 'number') return CALL_ADVICE[grpcCode];
  if (typeof migration !== 'string') return undefined;
  // A run's failure carries its direction and the run's target (src/migrations/runner.ts, follow.ts). CONFLICT
  // fails a back-out whose before-images meet entities changed since; outside a back-out it means other things.
  const back = direction === 'reverse';
  if (!RUN_FAILURES.includes(error.code) && !(back && error.code === 'CONFLICT')) return undefined;
  return recoveryAdvice(migration, { direction: back ? 'reverse' : 'forward', target: typeof target === 'string' ? target : undefined, code: error.code });
}

const UNREACHABLE = "Datastore did not answer, after retries: check this machine's network (or, for an emulator, that it still runs at DATASTORE_EMULATOR_HOST), then run the command again.";

/** What to do about a Datastore call that failed outside a migration's run (whose failures say how to go on), by its gRPC code. */
const CALL_ADVICE: Partial<Record<number, string>> = {
  [GrpcCode.UNAVAILABLE]: UNREACHABLE,
  [GrpcCode.DEADLINE_EXCEEDED]: UNREACHABLE,
  [GrpcCode.UNAUTHENTICATED]: "The credentials were refused: run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a service account's key file.",
  [GrpcCode.PERMISSION_DENIED]: 'The account may not use Datastore in this project: grant it the Cloud Datastore User role (roles/datastore.user), and check that --project names the right project.',
};

/** A gRPC status that reached the top is a Datastore call's failure, not a fault of this program: said as such, without a stack. */
function asFailure(error: unknown): unknown {
  const code = grpcCode(error);
  if (error instanceof DsMigrateError || code === undefined) return error;
  return new DsMigrateError('DATASTORE', `A call to Datastore failed: ${errorMessage(error)}`, { grpcCode: code }, { cause: error });
}

/** Exit codes (src/errors.ts): 0 done, 1 failed, 2 bad usage or input, 3 the lease is another run's, 4 a step's attempts were spent. */
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
      .command(makemigrationsCommand)
      .command(schemaCommand)
      .command(squashCommand)
      .command(emulatorCommand)
      .command(undoCommand)
      .demandCommand(1, 'Name a command: migrate, status, plan, verify, create, unlock, introspect, indexes, makemigrations, squash, schema, worker, emulator, undo.')
      .middleware((parsed) => checkBooleanValues(argv, parsed), true)
      .strict()
      .help()
      .fail((message, error) => {
        // yargs wraps a coerce's error (--wait-lock abc) in a YError: that is bad usage too, exit 2.
        throw error && error.name !== 'YError' ? error : new DsMigrateError('BAD_INPUT', error?.message ?? message);
      })
      .parseAsync();
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (thrown) {
    const error = asFailure(thrown);
    const code = error instanceof DsMigrateError ? error.exitCode : 1;
    const advice = adviceFor(error);
    if (json) jsonLine({ error: errorMessage(error), code: error instanceof DsMigrateError ? error.code : 'INTERNAL', context: error instanceof DsMigrateError ? error.context : undefined, advice });
    else process.stderr.write(`dsmigrate: ${error instanceof DsMigrateError ? error.message : ((error as Error)?.stack ?? String(error))}\n${advice ? `${advice}\n` : ''}`);
    return code;
  }
}

if (require.main === module) {
  keepHeapSmall();
  main().then((code) => process.exit(code));
}
