// npm run bench [-- --entities N] [-- --cold] [-- --scaling [--sizes a,b]] [-- --repeat R] [-- --executor cloud-tasks] [-- --factory] [-- --rate N [--ramp-up]] [-- --latency-ms n[,jitter] [--warm]] [-- --undo]
// Measures, on the same N seeded entities in a Firestore-mode emulator, each in its own process:
// (a) AddFieldData through the framework, (b) a bulk script (bounded key-range pages, batched upserts
// with backpressure, no transactions) on this package's Datastore, (o) the same script on the official
// client, as people write it, (t) the careful script on the official client (a transaction per batch),
// (w) the same entities only written, nothing read: the emulator's write path, which a read-modify-write
// cannot beat, and (c) the usual hand-written limit(500)+cursor loop. Each reports its CPU per entity too.
// Every measurement gets a fresh emulator seeded with identical data: the emulator keeps every
// version of every entity, so a second rewrite of the kind would run on a heavier emulator than the
// first. By default every fresh emulator is first warmed by running (a), (b), (o), (t) and (c) on another project
// (see warmUp), and (a) runs the LocalExecutor in the measuring process. --cold measures what a user
// waits for instead: no warm-up, every run a new plain node process timed from spawn to exit, and (a)
// `dsmigrate migrate` from the packed package installed in a temporary app (bench/cli.ts). --scaling
// runs (a) alone at several sizes (50k, 100k, 200k; with --cold 200k and 1M) to show time and peak RSS
// as the kind grows.
// Writes bench/results.md.
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { parseLatency, startDatastoreProxy } from '../emulator';
import { startDatastoreEmulator, type RunningEmulator } from '../emulator/datastore-emulator';
import { positiveRate } from '../src/cli/flags';
import { Datastore, type Entity } from '../src/datastore';
import { DEFAULT_CONCURRENCY } from '../src/executors';
import { compileMeasure, installBenchApp, measureCli } from './cli';
import { writeSection } from './results';
import { benchEntity, type Measurement, type Mode } from './measure';
import { scratchUntilExit } from './scratch';

const KIND = 'BenchPerson';
const PROJECT = 'bench';
/**
 * Every measuring process runs with this V8 heap limit. Without one, V8 on a machine with plenty of
 * memory lets garbage pile up to several hundred MB before its first full collection, whatever the
 * live set; with it, peak RSS shows what a process really needs (and a process holding the whole kind
 * in memory would fail).
 */
const HEAP_MB = 256;
/** Entities each mode goes through to warm a fresh emulator (see warmUp); with 20,000 the emulator's JIT was still compiling (a)'s paths during the measurement. */
const WARM_UP_ENTITIES = 60_000;

const HEADER = `Written by \`npm run bench\` (see bench/run.ts). Machine: ${os.cpus().length} cores, Node ${process.version}; the emulator (Java) shares the cores. Each measurement runs in its own process on a fresh emulator seeded with the same data. Those of bench/measure.ts run with a ${HEAP_MB} MB V8 heap limit; warm sections first warm the emulator by one run of (a), (b), (o), (t) and (c) on ${WARM_UP_ENTITIES.toLocaleString('en-US')} entities of another project, cold ones do not, and run the CLI with node's defaults.`;

interface Options {
  entities: number;
  handWrittenCap: number;
  repeat: number;
  /** (a) is the installed CLI in a temporary app (its path), and no warm-up unless `warmServer`. */
  coldApp?: string;
  /** `--warm` with `--latency-ms`: the emulator warmed first, as a server in production always is; each process still starts cold. */
  warmServer?: boolean;
  /** With coldApp: bench/measure.ts compiled to JavaScript, which the other modes run as (bench/cli.ts compileMeasure). */
  coldScript?: string;
  /** `--latency-ms`: every RPC of the measured process goes through the Datastore proxy with this delay. */
  latency?: { ms: number; jitterMs: number };
}

async function seed(host: string, count: number, from = 0, projectId = PROJECT): Promise<void> {
  const store = await Datastore.connect({ emulatorHost: host, projectId, concurrency: 8 });
  for (let start = from; start < from + count; start += 10_000) {
    const entities: Entity[] = [];
    for (let i = start; i < Math.min(from + count, start + 10_000); i++) {
      entities.push(benchEntity(KIND, i));
    }
    await store.save(entities);
  }
  // The emulator's first large queries run cold (its JIT compiles them): a cold ordered query costs
  // seconds more than a warm one. Warm both kinds of query the same way before every measurement.
  for (const orderByKey of [false, true, false, true]) for await (const batch of store.keys({ kind: KIND, orderByKey })) void batch;
  await store.close();
}

/**
 * Runs one mode of bench/measure.ts in a new process. With `coldScript` (its compiled JavaScript) the process
 * starts as plain `node` with node's defaults, and is timed from spawn to exit, as the CLI of (a) is: a
 * script's start (node, its modules) is part of what its user waits for.
 */
function measure(host: string, mode: Mode, field: string, max = 0, projectId = PROJECT, coldScript?: string): Promise<Measurement> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const args = coldScript ? [coldScript] : [...process.execArgv, `--max-old-space-size=${HEAP_MB}`, path.join(__dirname, 'measure.ts')];
    const child = spawn(process.execPath, [...args, mode, KIND, field, String(max)], {
      // No metadata server here: stops the high-level client of (c) from probing for one.
      env: { ...process.env, DATASTORE_EMULATOR_HOST: host, DATASTORE_PROJECT_ID: projectId, METADATA_SERVER_DETECTION: 'none' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`measurement ${mode} exited with ${code}`));
      const m = JSON.parse(out.trim().split('\n').pop()!) as Measurement;
      resolve(coldScript ? { ...m, ms: performance.now() - started } : m);
    });
  });
}

/**
 * A fresh emulator compiles its code paths (JIT) as they are first used, which costs seconds of CPU
 * while it lasts: the transactional reads and writes of (a) had that cost counted against them (its
 * compiler threads took 5-6 s of CPU during (a), 1.5-2.7 s during (b)), the plain writes of (b) much less
 * (seeding had already compiled them). So before measuring, each of (a), (b), (o), (t) and (c) (the last on its
 * first 2,000) runs once on a kind in another project, and every measurement finds the emulator equally
 * warm, as a server in production always is.
 */
async function warmUp(emulator: RunningEmulator): Promise<void> {
  const projectId = `${PROJECT}-warmup`;
  await seed(emulator.host, WARM_UP_ENTITIES, 0, projectId);
  for (const mode of ['a', 'b', 'o', 't', 'c'] as const) await measure(emulator.host, mode, `warm_${mode}`, 2_000, projectId);
}

async function withEmulator<T>(fn: (emulator: RunningEmulator) => Promise<T>, warm = true): Promise<T> {
  const emulator = await startDatastoreEmulator({ flavour: 'firestore', timeoutMs: 120_000 });
  try {
    if (warm) await warmUp(emulator);
    return await fn(emulator);
  } finally {
    await emulator.stop();
  }
}

const rate = (m: Measurement, entities = m.entities, ms = m.ms) => entities / (ms / 1000);
/** Microseconds of the process's CPU per entity it went through. */
const cpuMicros = (m: Measurement): number | undefined => (m.cpuSeconds === undefined ? undefined : (m.cpuSeconds * 1e6) / m.entities);
const cpuPerEntity = (m: Measurement): string => (cpuMicros(m) === undefined ? 'n/a' : fmt(cpuMicros(m)!));
const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** One measurement on a fresh emulator seeded with `n` entities; (a) through the installed CLI when cold. */
function fresh(options: Options, n: number, mode: Mode, max = 0, field = `field_${mode}`): Promise<Measurement> {
  const { coldApp, coldScript } = options;
  return withEmulator(async (emulator) => {
    await seed(emulator.host, n);
    // With latency, the measured process talks to the emulator through the Datastore proxy (emulator/datastore-proxy).
    const proxy = options.latency ? await startDatastoreProxy({ target: emulator.host, latencyMs: options.latency.ms, latencyJitterMs: options.latency.jitterMs }) : undefined;
    try {
      const host = proxy?.host ?? emulator.host;
      const m = mode === 'a' && coldApp ? await measureCli(coldApp, host, PROJECT, field) : await measure(host, mode, field, max, PROJECT, coldScript);
      if (m.entities !== n && mode !== 'c') throw new Error(`(${mode}) went through ${m.entities} entities of ${n}`);
      log(`(${mode}) ${fmt(m.entities)} entities in ${fmt(m.ms / 1000, 1)} s, peak RSS ${fmt(m.peakRssMb)} MB, CPU ${cpuPerEntity(m)} µs/entity`);
      return m;
    } finally {
      await proxy?.stop();
    }
  }, !coldApp || options.warmServer);
}

const A_LABEL = {
  warm: '(a) AddFieldData, LocalExecutor in the measuring process (transactions + checkpoints)',
  cold: '(a) `dsmigrate migrate`: the packed CLI in a temporary app, a new process (transactions + checkpoints)',
};

const RUN_MODES = ['a', 'b', 'o', 't', 'w'] as const;

async function comparison(options: Options): Promise<string> {
  const n = options.entities;
  log(`${fmt(n)} entities, best of ${options.repeat}${options.coldApp ? ', cold' : ''}`);
  const runs: Record<(typeof RUN_MODES)[number], Measurement>[] = [];
  // Interleaved, so that a burst of load elsewhere does not fall on one side only.
  for (let i = 0; i < options.repeat; i++) {
    const run: Partial<Record<Mode, Measurement>> = {};
    for (const mode of RUN_MODES) run[mode] = await fresh(options, n, mode, n);
    runs.push(run as Record<(typeof RUN_MODES)[number], Measurement>);
  }
  const fastest = (mode: (typeof RUN_MODES)[number]) => runs.map((run) => run[mode]).reduce((x, y) => (y.ms < x.ms ? y : x));
  const [a, b, o, t, w] = RUN_MODES.map(fastest);
  const c = await fresh(options, n, 'c', Math.min(n, options.handWrittenCap));
  const cFullMs = (c.ms * n) / c.entities;
  log(`(c) extrapolated to ${fmt(n)}: ${fmt(cFullMs / 1000, 0)} s`);
  const rows = [
    [options.coldApp ? A_LABEL.cold : A_LABEL.warm, a, a.entities, a.ms],
    ["(b) bulk script on this package's `Datastore`: key-range pages of 50,000 (the next read while one is written), ≤ 8 batched upserts in flight, no transactions", b, b.entities, b.ms],
    ['(o) the same bulk script on the official client (`@google-cloud/datastore`)', o, o.entities, o.ms],
    ['(t) the careful script on the official client: each batch of 500 in a transaction (lookup, set, commit), ≤ 8 transactions in flight', t, t.entities, t.ms],
    ['(w) writes only: the same entities upserted as (b) does, nothing read', w, w.entities, w.ms],
    [`(c) hand-written limit(500) + cursor loop: measured on the first ${fmt(c.entities)}, extrapolated linearly to ${fmt(n)}*`, c, n, cFullMs],
  ] as const;
  const ratio = (x: Measurement, y: Measurement) => `${fmt(rate(x) / rate(y), 2)}×`;
  const cpuRatio = (x: Measurement, y: Measurement) => (cpuMicros(x) === undefined || cpuMicros(y) === undefined ? 'n/a' : `${fmt(cpuMicros(x)! / cpuMicros(y)!, 2)}×`);
  const lines = [
    `### ${fmt(n)} entities, Firestore-mode emulator, ${options.coldApp ? 'cold: no warm-up, every run a new process timed from spawn to exit, (a) is the CLI a user runs' : 'warmed emulator, (a) in process'} (best of ${options.repeat} for (a), (b), (o) and (w))`,
    '',
    '| run | entities | time (s) | entities/s | peak RSS (MB) | CPU per entity (µs) |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(([label, m, entities, ms]) => `| ${label} | ${fmt(entities)} | ${fmt(ms / 1000, 1)} | ${fmt(rate(m, entities, ms))} | ${fmt(m.peakRssMb)} | ${m === c ? '' : cpuPerEntity(m)} |`),
    '',
    `- (a) / (b) throughput: **${ratio(a, b)}**${runs.length > 1 ? ` (each round: ${runs.map((run) => ratio(run.a, run.b)).join(', ')})` : ''}`,
    `- (a) / (o) throughput: **${ratio(a, o)}**${runs.length > 1 ? ` (each round: ${runs.map((run) => ratio(run.a, run.o)).join(', ')})` : ''}`,
    `- (a) / (t) throughput: **${ratio(a, t)}**`,
    `- (a) / (w) throughput: **${ratio(a, w)}** (the write path's limit is 1.0×)`,
    `- CPU per entity, (a) / (o): **${cpuRatio(a, o)}**, (a) / (t): **${cpuRatio(a, t)}** (user + system CPU of each process, start-up included, divided by its entities; the goal for (a) / (o) is at most 0.25×)`,
    `- (a) / (c) throughput: **${fmt(rate(a) / rate(c, n, cFullMs), 1)}×**`,
    '',
    `\\* Each page of (c) starts a query with a cursor, which costs time in proportion to the kind's size on this emulator, so at a fixed size every page costs about the same; the full run is the measured time × ${fmt(n)} / ${fmt(c.entities)}. Over a growing kind the loop is quadratic.`,
  ];
  return lines.join('\n');
}

/**
 * `--undo`: RemoveFieldData of a field every entity has, without and with before-images (docs/undo.md), each
 * on a fresh warmed emulator seeded alike, in the measuring process; the goal is at most 1.6× the time.
 */
async function undoComparison(options: Options): Promise<string> {
  const n = options.entities;
  const without = await fresh(options, n, 'r', n, 'email');
  const kept = await fresh(options, n, 'u', n, 'email');
  const row = (label: string, m: Measurement) => `| ${label} | ${fmt(m.entities)} | ${fmt(m.ms / 1000, 1)} | ${fmt(rate(m))} | ${fmt(m.peakRssMb)} | ${cpuPerEntity(m)} |`;
  return [
    `### RemoveFieldData with and without undo, ${fmt(n)} entities, Firestore-mode emulator, warmed, LocalExecutor in the measuring process`,
    '',
    '| run | entities | time (s) | entities/s | peak RSS (MB) | CPU per entity (µs) |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    row('RemoveFieldData', without),
    row('RemoveFieldData with `undo: true` (a before-image written beside each change, in the same transaction)', kept),
    '',
    `- time with undo / without: **${fmt(kept.ms / without.ms, 2)}×** (goal: at most 1.6×)`,
  ].join('\n');
}

/**
 * `--latency-ms n[,jitter]`: (a), (o) and (t) on the same entities, each a new process with the proxy's delay on
 * every RPC, as from Cloud Run to Datastore in one region: throughput then comes from concurrency and pipelining.
 * The emulator starts cold, or with `--warm` is warmed first: its first pass over transactional reads and writes
 * costs it seconds of compiling (see warmUp), which a server in production has long paid.
 */
async function latencyComparison(options: Options): Promise<string> {
  const n = options.entities;
  const { ms, jitterMs } = options.latency!;
  const modes = ['a', 'o', 't'] as const;
  const runs: Partial<Record<(typeof modes)[number], Measurement>> = {};
  for (const mode of modes) runs[mode] = await fresh(options, n, mode, n);
  const { a, o, t } = runs as Record<(typeof modes)[number], Measurement>;
  const row = (label: string, m: Measurement) => `| ${label} | ${fmt(m.entities)} | ${fmt(m.ms / 1000, 1)} | ${fmt(rate(m))} | ${cpuPerEntity(m)} |`;
  return [
    `### ${fmt(n)} entities, ${ms} ms${jitterMs ? ` (+ up to ${jitterMs} ms)` : ''} on every RPC (the Datastore proxy in front of the Firestore-mode emulator), ${options.warmServer ? 'warmed emulator (each mode ran once on another project first), every run a new process' : 'cold'}`,
    '',
    '| run | entities | time (s) | entities/s | CPU per entity (µs) |',
    '| --- | ---: | ---: | ---: | ---: |',
    row(A_LABEL.cold, a),
    row('(o) the bulk script on the official client (`@google-cloud/datastore`), ≤ 8 batched upserts in flight, no transactions', o),
    row('(t) the careful script on the official client: each batch of 500 in a transaction, ≤ 8 in flight', t),
    '',
    `- (a) / (o) throughput: **${fmt(rate(a) / rate(o), 2)}×**; (a) / (t): **${fmt(rate(a) / rate(t), 2)}×**`,
  ].join('\n');
}

async function scaling(options: Options, sizes: readonly number[]): Promise<string> {
  const runs: Measurement[] = [];
  for (const n of sizes) runs.push(await fresh(options, n, 'a'));
  const lines = [
    `### Scaling of (a), a fresh emulator per size${options.coldApp ? ', cold: the CLI a user runs' : ''}`,
    '',
    '| entities | time (s) | entities/s | time ratio to the previous size | peak RSS (MB) |',
    '| ---: | ---: | ---: | ---: | ---: |',
    ...runs.map((m, i) => `| ${fmt(m.entities)} | ${fmt(m.ms / 1000, 1)} | ${fmt(rate(m))} | ${i === 0 ? '' : `${fmt(m.ms / runs[i - 1].ms, 2)}×`} | ${fmt(m.peakRssMb)} |`),
  ];
  return lines.join('\n');
}

function log(message: string): void {
  process.stdout.write(`${message}\n`);
}

/** `--factory`: the model factory's cached and validated gets (bench/factory.ts). */
async function factory(): Promise<string> {
  const { runFactoryBench, formatFactoryBench } = await import('./factory');
  return withEmulator(async (emulator) => {
    const result = await runFactoryBench({ connection: { emulatorHost: emulator.host, projectId: 'bench-factory' } });
    return ['### ModelFactory on the Firestore-mode emulator', '', '```', formatFactoryBench(result), '```'].join('\n');
  });
}

/** `--executor cloud-tasks`: AddFieldData through the Cloud Tasks emulator and a worker against the in-process executor (bench/cloud-tasks.ts). */
async function cloudTasks(n: number): Promise<string> {
  const { runCloudTasksBench, formatCloudTasksBench } = await import('./cloud-tasks');
  return withEmulator(async (emulator) => {
    await seed(emulator.host, n);
    const result = await runCloudTasksBench({ connection: { emulatorHost: emulator.host, projectId: PROJECT }, kind: KIND, log });
    return [`### AddFieldData through Cloud Tasks, ${fmt(n)} entities`, '', formatCloudTasksBench(result)].join('\n');
  });
}

/**
 * `--rate N`: the achieved write rate against the limit, on 40 s of work at that rate, or with
 * `--ramp-up` on 11 minutes of the ramp (two 5-minute steps and the start of a third) (bench/rate.ts).
 * No warm-up: the limit, not the emulator, sets the pace.
 */
async function rateSection(limit: number, rampUp: boolean, max: number): Promise<string> {
  const { runRateBench, formatRateBench } = await import('./rate');
  const n = rampUp ? [300, 300, 60].reduce((sum, seconds, step) => sum + seconds * Math.min(limit, 500 * 1.5 ** step), 0) : Math.min(max, Math.round(limit * 40));
  const emulator = await startDatastoreEmulator({ flavour: 'firestore', timeoutMs: 120_000 });
  try {
    await seed(emulator.host, n);
    const result = await runRateBench({ connection: { emulatorHost: emulator.host, projectId: PROJECT }, kind: KIND, rate: limit, rampUp });
    return [
      `### AddFieldData at a limit of ${fmt(limit)} entities/s${rampUp ? ', ramped up (500/50/5)' : ''}, LocalExecutor with ${DEFAULT_CONCURRENCY} shards at once`,
      '',
      formatRateBench(result),
    ].join('\n');
  } finally {
    await emulator.stop();
  }
}

async function main(): Promise<void> {
  scratchUntilExit();
  const argv = yargs(hideBin(process.argv))
    .option('entities', { type: 'number', default: 100_000, describe: 'entities to seed' })
    .option('cold', { type: 'boolean', default: false, describe: 'no warm-up; (a) is the packed CLI in a temporary app, from a cold start' })
    .option('scaling', { type: 'boolean', default: false, describe: 'run (a) alone at several sizes (--sizes)' })
    .option('sizes', { type: 'string', describe: 'with --scaling: entities, comma-separated (default 50000,100000,200000; cold 200000,1000000)' })
    .option('hand-written-cap', { type: 'number', describe: 'entities (c) runs before extrapolating (default 10,000, fewer past 100,000: each page costs a scan of the kind)' })
    .option('repeat', { type: 'number', default: 1, describe: 'runs of (a) and (b), interleaved; the fastest of each is kept' })
    .option('executor', { choices: ['local', 'cloud-tasks'] as const, default: 'local' as const, describe: 'cloud-tasks: compare AddFieldData through Cloud Tasks with the in-process executor' })
    .option('factory', { type: 'boolean', default: false, describe: "measure the model factory's gets instead" })
    .option('rate', { type: 'number', coerce: positiveRate('--rate'), describe: 'measure the achieved write rate against this limit (entities/s) instead' })
    .option('ramp-up', { type: 'boolean', default: false, describe: 'with --rate: ramp up to it by 500/50/5' })
    .option('undo', { type: 'boolean', default: false, describe: 'RemoveFieldData with and without before-images (undo), on the same entities' })
    .option('latency-ms', { type: 'string', describe: 'n[,jitter]: (a), (o) and (t), cold, with this delay on every RPC through the Datastore proxy' })
    .option('warm', { type: 'boolean', default: false, describe: 'with --latency-ms: warm the emulator first (every run is still a new process)' })
    .strict()
    .parseSync();
  const n = argv.entities;
  const options: Options = { entities: n, handWrittenCap: argv['hand-written-cap'] ?? Math.min(10_000, Math.max(1_000, Math.round(1e9 / n))), repeat: argv.repeat };
  const prefix = argv.cold ? 'cold' : 'comparison';
  if (argv['latency-ms'] !== undefined) {
    const { latencyMs: ms, latencyJitterMs: jitterMs } = parseLatency(argv['latency-ms'], '--latency-ms');
    options.latency = { ms, jitterMs };
    options.coldApp = installBenchApp(KIND);
    options.coldScript = compileMeasure();
    options.warmServer = argv.warm;
    writeSection(`latency-${ms}-${n}${argv.warm ? '-warm' : ''}`, await latencyComparison(options), HEADER);
  } else if (argv.undo) writeSection(`undo-${n}`, await undoComparison(options), HEADER);
  else if (argv.factory) writeSection('factory', await factory(), HEADER);
  else if (argv.rate !== undefined) writeSection(argv['ramp-up'] ? 'rate-ramp' : 'rate', await rateSection(argv.rate, argv['ramp-up'], n), HEADER);
  else if (argv.executor === 'cloud-tasks') writeSection('cloud-tasks', await cloudTasks(n), HEADER);
  else {
    if (argv.cold) {
      options.coldApp = installBenchApp(KIND);
      options.coldScript = compileMeasure();
    }
    if (argv.scaling) {
      const sizes = (argv.sizes ?? (argv.cold ? '200000,1000000' : '50000,100000,200000')).split(',').map(Number);
      if (!sizes.every((size) => Number.isInteger(size) && size > 0)) throw new Error(`--sizes: whole numbers of entities, comma-separated, not ${argv.sizes}`);
      writeSection(`${prefix}-scaling`, await scaling(options, sizes), HEADER);
    } else writeSection(`${prefix}-${n}`, await comparison(options), HEADER);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
