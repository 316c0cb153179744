/**
 * `npm run emulator [-- --flavour classic] [--port N] [--tasks-port N] [--no-tasks]`
 * Starts a Datastore emulator (Firestore in Datastore mode by default) and the Cloud Tasks emulator,
 * prints the environment to point dsmigrate and the app at them, and stops both on Ctrl-C.
 */
import { parseArgs } from 'node:util';
import { startCloudTasksEmulator } from './cloud-tasks';
import { EMULATOR_FLAVOURS, startDatastoreEmulator, type EmulatorFlavour } from './datastore-emulator';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      flavour: { type: 'string', default: 'firestore' },
      port: { type: 'string' },
      'tasks-port': { type: 'string' },
      'no-tasks': { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
    },
  });
  const flavour = values.flavour as EmulatorFlavour;
  if (!EMULATOR_FLAVOURS.includes(flavour)) throw new Error(`--flavour must be one of ${EMULATOR_FLAVOURS.join(', ')}, not "${values.flavour}"`);
  const datastore = await startDatastoreEmulator({ flavour, port: values.port ? Number(values.port) : undefined, verbose: values.verbose });
  const tasks = values['no-tasks'] ? undefined : await startCloudTasksEmulator({ port: values['tasks-port'] ? Number(values['tasks-port']) : 0 });
  process.stdout.write(`# ${flavour} Datastore emulator${tasks ? ' and Cloud Tasks emulator' : ''} running; Ctrl-C stops them.\n`);
  process.stdout.write(`export DATASTORE_EMULATOR_HOST=${datastore.host}\n`);
  if (tasks) process.stdout.write(`export CLOUD_TASKS_EMULATOR_HOST=${tasks.host}\n`);
  const stop = async () => {
    await Promise.all([datastore.stop(), tasks?.stop()]);
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(2);
});
