import type { Argv } from 'yargs';
import { DsMigrateError } from '../errors';
import { DEFAULT_CONCURRENCY } from '../executors';
import { checkRate } from '../sharding';
import type { ConfigFlags } from './config';

export interface GlobalFlags extends ConfigFlags {
  json: boolean;
}

export function globalFlags(y: Argv): Argv<GlobalFlags> {
  return y
    .option('project', { type: 'string', describe: 'Google Cloud project (else DATASTORE_PROJECT_ID, GOOGLE_CLOUD_PROJECT, config)' })
    .option('database', { type: 'string', describe: 'Firestore database id (default: the default database)' })
    .option('emulator-host', { type: 'string', describe: 'host:port of a Datastore emulator (else DATASTORE_EMULATOR_HOST)' })
    .option('dir', { type: 'string', array: true, nargs: 1, requiresArg: true, describe: 'Migrations directory, repeatable: [app=]path (default: ./migrations, app "default")' })
    .option('control-namespace', { type: 'string', describe: 'Namespace for the records, lock and shard state (default: "")' })
    .option('concurrency', { type: 'number', describe: `Shards processed at once (default ${DEFAULT_CONCURRENCY})` })
    .option('config', { type: 'string', describe: 'Config file (default: dsmigrate.config.{ts,js,json} in the working directory)' })
    .option('json', { type: 'boolean', default: false, describe: 'Machine-readable output: JSON lines on stdout' }) as Argv<GlobalFlags>;
}

/**
 * yargs reads a boolean flag given any value but true or false (`--dry-run=yes`, `--check=1`) as false, and
 * the command would then run for real: such a value is refused, naming the flag. `parsed` is what yargs
 * made of `raw`: a flag it holds as a boolean is one declared so.
 */
export function checkBooleanValues(raw: readonly string[], parsed: Record<string, unknown>): void {
  for (const token of raw) {
    if (token === '--') return;
    const match = /^--([^=]+)=(.*)$/s.exec(token);
    if (!match || match[2] === 'true' || match[2] === 'false' || typeof parsed[match[1]] !== 'boolean') continue;
    const flag = `--${match[1]}`;
    throw new DsMigrateError('BAD_INPUT', `${flag} takes no value: give it alone (or ${flag}=false), not ${token}.`, { flag });
  }
}

/** A yargs coerce for a number of seconds: `--wait-lock abc` would otherwise become NaN and wait without a deadline. */
export function nonNegativeSeconds(flag: string): (value: unknown) => number {
  return (value) => {
    const n = typeof value === 'number' ? value : Number.NaN;
    if (!(Number.isFinite(n) && n >= 0))
      throw new DsMigrateError('BAD_INPUT', `${flag} takes a number of seconds (0 or more), not ${Number.isNaN(value) ? 'a number' : JSON.stringify(value)}.`, { flag });
    return n;
  };
}

/** A yargs coerce for a rate in entities per second: 0, a negative number or `abc` (NaN) would write without a limit. */
export function positiveRate(flag: string): (value: unknown) => number | undefined {
  return (value) => (value === undefined ? undefined : checkRate(value, flag));
}

/**
 * A yargs coerce for a numeric flag read as a string, so that a refusal names the flag and quotes what was
 * typed (yargs' own numbers turn `--port abc` into NaN).
 */
export function numberFlag(flag: string, what: string, ok: (n: number) => boolean): (value: unknown) => number {
  return (value) => {
    const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : Number.NaN;
    if (ok(n)) return n;
    throw new DsMigrateError('BAD_INPUT', `${flag} takes ${what}, not ${JSON.stringify(value)}.`, { flag });
  };
}

/** A port flag's port was taken: `what` names the flag and its value (or, where either of two may be, both). */
export function portInUse(what: string, flag: string, cause: unknown): DsMigrateError {
  return new DsMigrateError('BAD_INPUT', `${what} is in use: choose another, or 0 for a free one.`, { flag }, { cause });
}

export const portFlag = (flag: string) => numberFlag(flag, 'a port number (0 to 65535; 0 picks a free one)', (n) => Number.isInteger(n) && n >= 0 && n <= 65535);
