/**
 * Runs the Cloud Tasks emulator until SIGINT/SIGTERM:
 *   npx tsx emulator/cloud-tasks-cli.ts --port 8123 [--host 127.0.0.1] [--tombstone-ms N]
 *     [--fail-fraction F] [--duplicate-fraction F] [--latency-ms N] [--seed N] [--verbose]
 * Prints CLOUD_TASKS_EMULATOR_HOST=host:port once it listens (port 0 picks a free one).
 */
import { parseArgs } from 'node:util';
import { startCloudTasksEmulator, type CloudTasksEmulatorOptions } from './cloud-tasks';

function numberOption(values: Record<string, string | boolean | undefined>, name: string): number | undefined {
  const raw = values[name];
  if (raw === undefined || typeof raw === 'boolean') return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value)) throw new Error(`--${name} expects a number, got "${raw}"`);
  return value;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '8123' },
      host: { type: 'string', default: '127.0.0.1' },
      'tombstone-ms': { type: 'string' },
      'fail-fraction': { type: 'string' },
      'duplicate-fraction': { type: 'string' },
      'latency-ms': { type: 'string' },
      seed: { type: 'string' },
      verbose: { type: 'boolean', default: false },
    },
  });
  const options: CloudTasksEmulatorOptions = { hostname: values.host };
  const set = <K extends keyof CloudTasksEmulatorOptions>(key: K, value: CloudTasksEmulatorOptions[K] | undefined): void => {
    if (value !== undefined) options[key] = value;
  };
  set('port', numberOption(values, 'port'));
  set('tombstoneMs', numberOption(values, 'tombstone-ms'));
  set('failFraction', numberOption(values, 'fail-fraction'));
  set('duplicateFraction', numberOption(values, 'duplicate-fraction'));
  set('latencyMs', numberOption(values, 'latency-ms'));
  set('seed', numberOption(values, 'seed'));
  if (values.verbose) options.log = (line) => console.log(line);

  const emulator = await startCloudTasksEmulator(options);
  console.log(`CLOUD_TASKS_EMULATOR_HOST=${emulator.host}`);

  const shutdown = (signal: string): void => {
    console.error(`${signal}: stopping the Cloud Tasks emulator`);
    emulator.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(2);
});
