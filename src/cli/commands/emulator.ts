import type { Argv, CommandModule } from 'yargs';
// The one import of src/ from emulator/ (eslint.config.mjs allows it here only, through emulator/index.ts).
import { EMULATOR_FLAVOURS, EmulatorSetupError, startLocalEmulators, type CloudTasksEmulatorOptions, type EmulatorFlavour } from '../../../emulator';
import { DsMigrateError } from '../../errors';
import type { GlobalFlags } from '../flags';
import { jsonLine } from '../output';

interface EmulatorFlags extends GlobalFlags {
  flavour: EmulatorFlavour;
  port?: number;
  tasksPort: number;
  workerPort: number;
  tasks: boolean;
  datastore: boolean;
  tombstoneMs?: number;
  failFraction?: number;
  duplicateFraction?: number;
  lostAnswerFraction?: number;
  overlappingDuplicateFraction?: number;
  latencyMs?: number;
  seed?: number;
  verbose: boolean;
}

/**
 * The numeric flags are read as strings and checked here, so that a refusal names the flag and quotes
 * what was typed (yargs' own numbers turn `--port abc` into NaN).
 */
function checked(flag: string, what: string, ok: (n: number) => boolean): (value: unknown) => number {
  return (value) => {
    const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : Number.NaN;
    if (ok(n)) return n;
    throw new DsMigrateError('BAD_INPUT', `${flag} takes ${what}, not ${JSON.stringify(value)}.`, { flag });
  };
}
const port = (flag: string) => checked(flag, 'a port number (0 to 65535; 0 picks a free one)', (n) => Number.isInteger(n) && n >= 0 && n <= 65535);
const fraction = (flag: string) => checked(flag, 'a fraction between 0 and 1', (n) => n >= 0 && n <= 1);
const milliseconds = (flag: string) => checked(flag, 'a number of milliseconds (0 or more)', (n) => Number.isFinite(n) && n >= 0);
const integer = (flag: string) => checked(flag, 'a whole number', Number.isSafeInteger);

function tasksOptions(argv: EmulatorFlags): CloudTasksEmulatorOptions {
  const options: CloudTasksEmulatorOptions = {
    port: argv.tasksPort,
    tombstoneMs: argv.tombstoneMs,
    failFraction: argv.failFraction,
    duplicateFraction: argv.duplicateFraction,
    lostAnswerFraction: argv.lostAnswerFraction,
    overlappingDuplicateFraction: argv.overlappingDuplicateFraction,
    latencyMs: argv.latencyMs,
    seed: argv.seed,
  };
  if (argv.verbose) options.log = (line) => process.stderr.write(`${line}\n`);
  return options;
}

export const emulatorCommand: CommandModule<GlobalFlags, EmulatorFlags> = {
  command: 'emulator',
  describe: 'Run a Datastore emulator and a Cloud Tasks emulator, print the environment that points dsmigrate at them, stop both on Ctrl-C',
  builder: (y) =>
    y
      .option('flavour', { choices: EMULATOR_FLAVOURS, default: 'firestore' as EmulatorFlavour, describe: 'firestore: Firestore in Datastore mode; classic: the legacy Datastore emulator' })
      .option('port', { type: 'string', coerce: port('--port'), describe: 'Datastore emulator port (default: a free one)' })
      .option('tasks-port', { type: 'string', default: '0', coerce: port('--tasks-port'), describe: 'Cloud Tasks emulator port (default: a free one)' })
      .option('worker-port', {
        type: 'string',
        default: String(Number(process.env.PORT) || 8080),
        coerce: port('--worker-port'),
        describe: 'Port of the suggested DSMIGRATE_WORKER_URL (what `dsmigrate worker` listens on: $PORT, else 8080)',
      })
      .option('tasks', { type: 'boolean', default: true, describe: 'Start the Cloud Tasks emulator (--no-tasks: Datastore only)' })
      .option('datastore', { type: 'boolean', default: true, describe: 'Start a Datastore emulator (--no-datastore: Cloud Tasks only); needs gcloud and Java' })
      .option('tombstone-ms', { type: 'string', coerce: milliseconds('--tombstone-ms'), describe: "How long a finished task's name stays reserved (default 1 hour)" })
      .option('fail-fraction', { type: 'string', coerce: fraction('--fail-fraction'), describe: 'Share of dispatches not sent, counted as a 503 and retried' })
      .option('duplicate-fraction', { type: 'string', coerce: fraction('--duplicate-fraction'), describe: 'Share of successful tasks delivered once more afterwards' })
      .option('lost-answer-fraction', { type: 'string', coerce: fraction('--lost-answer-fraction'), describe: 'Share of dispatches whose 2xx answer is lost, so the done task is retried' })
      .option('overlapping-duplicate-fraction', { type: 'string', coerce: fraction('--overlapping-duplicate-fraction'), describe: 'Share of dispatches sent twice at the same moment' })
      .option('latency-ms', { type: 'string', coerce: milliseconds('--latency-ms'), describe: 'Wait before each dispatch' })
      .option('seed', { type: 'string', coerce: integer('--seed'), describe: 'Makes the fault decisions repeatable' })
      .option('verbose', { type: 'boolean', default: false, describe: "Forward the Datastore emulator's output; one line per Cloud Tasks attempt (stderr)" }) as unknown as Argv<EmulatorFlags>, // yargs types omit the camelCase aliases it adds
  handler: async (argv) => {
    if (!argv.tasks && !argv.datastore) throw new DsMigrateError('BAD_INPUT', '--no-tasks and --no-datastore together leave nothing to start.', { flag: '--no-datastore' });
    let emulators;
    try {
      emulators = await startLocalEmulators({
        datastore: argv.datastore ? { flavour: argv.flavour, port: argv.port, verbose: argv.verbose } : undefined,
        tasks: argv.tasks ? tasksOptions(argv) : undefined,
        projectId: argv.project ?? 'dsmigrate-local',
        workerPort: argv.workerPort,
      });
    } catch (error) {
      // gcloud or Java missing, or the emulator not answering: the message says what to install or check.
      if (error instanceof EmulatorSetupError) throw new DsMigrateError('CONNECTION', error.message, {}, { cause: error });
      if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE' || /No address added|EADDRINUSE/.test(String(error))) {
        throw new DsMigrateError('BAD_INPUT', `--tasks-port ${argv.tasksPort} is in use: choose another, or 0 for a free one.`, { flag: '--tasks-port' }, { cause: error });
      }
      throw error;
    }
    if (argv.json) jsonLine(emulators.environment);
    else {
      const running = [emulators.datastore && `${argv.flavour} Datastore emulator`, emulators.tasks && 'Cloud Tasks emulator'].filter(Boolean).join(' and ');
      const lines = [`# ${running} running; Ctrl-C stops ${emulators.datastore && emulators.tasks ? 'them' : 'it'}. In another shell:`];
      lines.push(...Object.entries(emulators.environment).map(([name, value]) => `export ${name}=${value}`));
      if (emulators.tasks) lines.push(`# then: dsmigrate worker --port ${argv.workerPort} & dsmigrate migrate --executor cloud-tasks`);
      process.stdout.write(`${lines.join('\n')}\n`);
    }
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await emulators.stop();
  },
};
