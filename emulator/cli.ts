/**
 * `npm run emulator [-- --flavour classic] [--port N] [--tasks-port N] [--no-tasks] [--no-datastore]
 *   [--tombstone-ms N] [--fail-fraction F] [--duplicate-fraction F] [--lost-answer-fraction F]
 *   [--overlapping-duplicate-fraction F] [--latency-ms N] [--seed N] [--verbose]`
 * Starts a Datastore emulator (Firestore in Datastore mode by default) and the Cloud Tasks emulator,
 * prints the environment to point dsmigrate and the app at them, and stops both on Ctrl-C or SIGTERM.
 * The fault flags inject failures, duplicate deliveries (after or during the first), lost answers and
 * latency into the Cloud Tasks emulator.
 */
import { parseArgs } from 'node:util';
import { startCloudTasksEmulator, type CloudTasksEmulatorOptions } from './cloud-tasks';
import { EMULATOR_FLAVOURS, startDatastoreEmulator, type EmulatorFlavour } from './datastore-emulator';

function numberOption(values: Record<string, string | boolean | undefined>, name: string): number | undefined {
  const raw = values[name];
  if (raw === undefined || typeof raw === 'boolean') return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value)) throw new Error(`--${name} expects a number, not "${raw}"`);
  return value;
}

function tasksOptions(values: Record<string, string | boolean | undefined>): CloudTasksEmulatorOptions {
  const options: CloudTasksEmulatorOptions = { port: numberOption(values, 'tasks-port') ?? 0 };
  const set = <K extends keyof CloudTasksEmulatorOptions>(key: K, value: CloudTasksEmulatorOptions[K] | undefined): void => {
    if (value !== undefined) options[key] = value;
  };
  set('tombstoneMs', numberOption(values, 'tombstone-ms'));
  set('failFraction', numberOption(values, 'fail-fraction'));
  set('duplicateFraction', numberOption(values, 'duplicate-fraction'));
  set('lostAnswerFraction', numberOption(values, 'lost-answer-fraction'));
  set('overlappingDuplicateFraction', numberOption(values, 'overlapping-duplicate-fraction'));
  set('latencyMs', numberOption(values, 'latency-ms'));
  set('seed', numberOption(values, 'seed'));
  if (values.verbose) options.log = (line) => process.stderr.write(`${line}\n`);
  return options;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      flavour: { type: 'string', default: 'firestore' },
      port: { type: 'string' },
      'tasks-port': { type: 'string' },
      'no-tasks': { type: 'boolean', default: false },
      'no-datastore': { type: 'boolean', default: false },
      'tombstone-ms': { type: 'string' },
      'fail-fraction': { type: 'string' },
      'duplicate-fraction': { type: 'string' },
      'lost-answer-fraction': { type: 'string' },
      'overlapping-duplicate-fraction': { type: 'string' },
      'latency-ms': { type: 'string' },
      seed: { type: 'string' },
      verbose: { type: 'boolean', default: false },
    },
  });
  const flavour = values.flavour as EmulatorFlavour;
  if (!EMULATOR_FLAVOURS.includes(flavour)) throw new Error(`--flavour must be one of ${EMULATOR_FLAVOURS.join(', ')}, not "${values.flavour}"`);
  if (values['no-tasks'] && values['no-datastore']) throw new Error('--no-tasks and --no-datastore together leave nothing to start');
  const datastore = values['no-datastore'] ? undefined : await startDatastoreEmulator({ flavour, port: numberOption(values, 'port'), verbose: values.verbose });
  const tasks = values['no-tasks'] ? undefined : await startCloudTasksEmulator(tasksOptions(values));
  const running = [datastore && `${flavour} Datastore emulator`, tasks && 'Cloud Tasks emulator'].filter(Boolean).join(' and ');
  process.stdout.write(`# ${running} running; Ctrl-C stops ${datastore && tasks ? 'them' : 'it'}.\n`);
  if (datastore) process.stdout.write(`export DATASTORE_EMULATOR_HOST=${datastore.host}\n`);
  if (tasks) process.stdout.write(`export CLOUD_TASKS_EMULATOR_HOST=${tasks.host}\n`);
  const stop = async () => {
    await Promise.all([datastore?.stop(), tasks?.stop()]);
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(2);
});
