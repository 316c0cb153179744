import type { Argv, CommandModule } from 'yargs';
// The one import of src/ from emulator/ (eslint.config.mjs allows it here only, through emulator/index.ts).
import {
  DatastoreProxyOptionError,
  EMULATOR_FLAVOURS,
  EmulatorPortInUseError,
  EmulatorSetupError,
  FAULT_CODES,
  parseFaultMethods,
  parseFaultShares,
  parseLatency,
  startLocalEmulators,
  type CloudTasksEmulatorOptions,
  type DatastoreProxyOptions,
  type DatastoreMethod,
  type DatastoreProxyReport,
  type EmulatorFlavour,
  type FaultCode,
} from '../../../emulator';
import { DsMigrateError } from '../../errors';
import { numberFlag, portFlag, portInUse, type GlobalFlags } from '../flags';
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
  datastoreProxy?: boolean;
  datastoreProxyPort: number;
  datastoreFaultFraction?: number;
  datastoreFaultCodes?: Partial<Record<FaultCode, number>>;
  datastoreFaultMethods?: DatastoreMethod[];
  datastoreLatencyMs?: { latencyMs: number; latencyJitterMs: number };
  hotLimit?: number;
  verbose: boolean;
}

const fraction = (flag: string) => numberFlag(flag, 'a fraction between 0 and 1', (n) => n >= 0 && n <= 1);
const milliseconds = (flag: string) => numberFlag(flag, 'a number of milliseconds (0 or more)', (n) => Number.isFinite(n) && n >= 0);
const integer = (flag: string) => numberFlag(flag, 'a whole number', Number.isSafeInteger);
const positive = (flag: string) => numberFlag(flag, 'a number above 0', (n) => Number.isFinite(n) && n > 0);

/** The proxy's own parsers, their refusals turned into usage errors that name the flag. */
function parsed<T>(parse: (text: string, flag: string) => T, flag: string): (value: unknown) => T {
  return (value) => {
    try {
      return parse(String(value), flag);
    } catch (error) {
      if (error instanceof DatastoreProxyOptionError) throw new DsMigrateError('BAD_INPUT', error.message, { flag });
      throw error;
    }
  };
}

/**
 * The Datastore proxy runs when a flag asks for what only it does (faults, latency, a hot limit) or
 * `--datastore-proxy` asks for it alone (for the hot-document report); otherwise the environment points
 * straight at the emulator, one hop less, and nothing changes for those who never asked.
 */
function proxyOptions(argv: EmulatorFlags): Omit<DatastoreProxyOptions, 'target'> | undefined {
  const wanted = argv.datastoreProxy ?? [argv.datastoreFaultFraction, argv.datastoreFaultCodes, argv.datastoreFaultMethods, argv.datastoreLatencyMs, argv.hotLimit].some((v) => v !== undefined);
  if (!wanted) return undefined;
  return {
    port: argv.datastoreProxyPort,
    faultFraction: argv.datastoreFaultFraction,
    faultShares: argv.datastoreFaultCodes,
    faultMethods: argv.datastoreFaultMethods,
    ...argv.datastoreLatencyMs,
    hotLimit: argv.hotLimit,
    seed: argv.seed,
  };
}

/** The proxy's counts and hot documents, as lines a person reads. */
function reportLines(report: DatastoreProxyReport): string[] {
  const { counts, hotDocuments } = report;
  const rpcs = Object.values(counts.rpcs).reduce((n, c) => n + c, 0);
  const lines = [`# Datastore proxy: ${rpcs} RPCs, ${counts.totalInjected} faults injected`];
  for (const [method, perCode] of Object.entries(counts.injected)) {
    lines.push(
      `#   ${method}: ${Object.entries(perCode)
        .map(([code, n]) => `${code} ${n}`)
        .join(', ')} (of ${counts.rpcs[method as keyof typeof counts.rpcs] ?? 0})`,
    );
  }
  if (hotDocuments.length === 0) lines.push('# No hot entities.');
  for (const doc of hotDocuments) {
    const where = doc.namespace ? ` in namespace ${JSON.stringify(doc.namespace)}` : '';
    const refused = doc.rejected > 0 ? `, ${doc.rejected} refused by --hot-limit` : '';
    lines.push(`# ${doc.hot ? 'Hot' : 'Over --hot-limit'}: ${doc.kind} ${doc.path}${where} (project ${doc.projectId}): ${doc.writes} writes, up to ${doc.maxPerSecond} a second${refused}`);
  }
  return lines;
}

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
      .option('port', { type: 'string', coerce: portFlag('--port'), describe: 'Datastore emulator port (default: a free one)' })
      .option('tasks-port', { type: 'string', default: '0', coerce: portFlag('--tasks-port'), describe: 'Cloud Tasks emulator port (default: a free one)' })
      .option('worker-port', {
        type: 'string',
        default: String(Number(process.env.PORT) || 8080),
        coerce: portFlag('--worker-port'),
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
      .option('seed', { type: 'string', coerce: integer('--seed'), describe: 'Makes the fault decisions repeatable (Cloud Tasks and the Datastore proxy)' })
      .option('datastore-proxy', {
        type: 'boolean',
        describe: 'Put the fault and latency proxy in front of the Datastore emulator (on by default with any of the flags below; --datastore-proxy alone: the hot-entity report)',
      })
      .option('datastore-proxy-port', { type: 'string', default: '0', coerce: portFlag('--datastore-proxy-port'), describe: 'Datastore proxy port (default: a free one)' })
      .option('datastore-fault-fraction', {
        type: 'string',
        coerce: fraction('--datastore-fault-fraction'),
        describe: 'Share of Lookup, RunQuery, BeginTransaction, Commit and Rollback RPCs answered with a fault',
      })
      .option('datastore-fault-codes', {
        type: 'string',
        coerce: parsed(parseFaultShares, '--datastore-fault-codes'),
        describe: `Which faults, with relative shares, e.g. aborted=2,unavailable=1 (default: all alike): ${FAULT_CODES.join(', ')}`,
      })
      .option('datastore-fault-methods', {
        type: 'string',
        coerce: parsed(parseFaultMethods, '--datastore-fault-methods'),
        describe: 'The RPCs faults go into (default: lookup,runQuery,beginTransaction,commit,rollback), e.g. commit',
      })
      .option('datastore-latency-ms', { type: 'string', coerce: parsed(parseLatency, '--datastore-latency-ms'), describe: 'Delay before each Datastore RPC: n, or n,jitter (n plus up to jitter)' })
      .option('hot-limit', { type: 'string', coerce: positive('--hot-limit'), describe: 'Writes a second to one entity above which its commits are answered ABORTED (contention)' })
      .option('verbose', { type: 'boolean', default: false, describe: "Forward the Datastore emulator's output; one line per Cloud Tasks attempt (stderr)" }) as unknown as Argv<EmulatorFlags>, // yargs types omit the camelCase aliases it adds
  handler: async (argv) => {
    if (!argv.tasks && !argv.datastore) throw new DsMigrateError('BAD_INPUT', '--no-tasks and --no-datastore together leave nothing to start.', { flag: '--no-datastore' });
    let emulators;
    try {
      emulators = await startLocalEmulators({
        datastore: argv.datastore ? { flavour: argv.flavour, port: argv.port, verbose: argv.verbose } : undefined,
        tasks: argv.tasks ? tasksOptions(argv) : undefined,
        datastoreProxy: argv.datastore ? proxyOptions(argv) : undefined,
        projectId: argv.project ?? 'dsmigrate-local',
        workerPort: argv.workerPort,
      });
    } catch (error) {
      // gcloud or Java missing, or the emulator not answering: the message says what to install or check.
      if (error instanceof EmulatorPortInUseError) throw portInUse(`--port ${error.port}`, '--port', error);
      if (error instanceof EmulatorSetupError) throw new DsMigrateError('CONNECTION', error.message, {}, { cause: error });
      if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE' || /No address added|EADDRINUSE/.test(String(error))) {
        throw portInUse(`--tasks-port ${argv.tasksPort} or --datastore-proxy-port ${argv.datastoreProxyPort}`, '--tasks-port', error);
      }
      throw error;
    }
    if (argv.json) jsonLine(emulators.environment);
    else {
      const proxied = emulators.datastoreProxy ? ` (behind the fault and latency proxy; the emulator itself: ${emulators.datastore?.host})` : '';
      const running = [emulators.datastore && `${argv.flavour} Datastore emulator${proxied}`, emulators.tasks && 'Cloud Tasks emulator'].filter(Boolean).join(' and ');
      const lines = [`# ${running} running; Ctrl-C stops ${emulators.datastore && emulators.tasks ? 'them' : 'it'}. In another shell:`];
      lines.push(...Object.entries(emulators.environment).map(([name, value]) => `export ${name}=${value}`));
      if (emulators.tasks) lines.push(`# then: dsmigrate worker --port ${argv.workerPort} & dsmigrate migrate --executor cloud-tasks`);
      process.stdout.write(`${lines.join('\n')}\n`);
    }
    // Kept listening: a signal sent again while stopping (a supervisor's repeat, tsx relaying it twice under
    // load) must not kill the process before the emulators stopped and the proxy's report is printed.
    await new Promise<void>((resolve) => {
      process.on('SIGINT', resolve);
      process.on('SIGTERM', resolve);
    });
    const report = emulators.datastoreProxy?.report();
    await emulators.stop();
    if (report) {
      if (argv.json) jsonLine({ datastoreProxy: report });
      else process.stdout.write(`${reportLines(report).join('\n')}\n`);
    }
  },
};
