/**
 * AddFieldData through Cloud Tasks (the tasks emulator and one local worker process) against the same
 * operation in-process (bench/measure.ts, mode a), on the same entities, each setting a field of its
 * own so that both write every entity. `npm run bench -- --executor cloud-tasks` calls
 * runCloudTasksBench; `npx tsx bench/cloud-tasks.ts [--entities N]` runs it alone on a Firestore-mode
 * emulator of its own.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startCloudTasksEmulator } from '../emulator/cloud-tasks';
import { freePort, startDatastoreEmulator } from '../emulator/datastore-emulator';
import { Datastore, Entity, Key } from '../src/datastore';
import { createTasksClient, resolveDispatchSettings } from '../src/executors/cloud-tasks';
import { jobRef } from '../src/control';
import { loadGraph } from '../src/migrations';
import { startRun } from '../src/executors/cloud-tasks';
import { jobTotals } from '../src/sharding';
import { loadRun } from '../src/migrations';
import { scratchUntilExit } from './scratch';

const ROOT = path.resolve(__dirname, '..');
const CONTROL_NAMESPACE = 'bench-cloud-tasks';

export interface CloudTasksBenchOptions {
  /** The emulator and project holding the seeded kind. */
  connection: { emulatorHost: string; projectId: string };
  kind: string;
  /** The in-process figure (bench/measure.ts mode a), if already measured on this data; measured here otherwise. */
  inProcess?: InProcessMeasurement;
  /** A task's work before it continues in a new one. Default 60 (the production default). */
  sliceSeconds?: number;
  log?: (line: string) => void;
  /** Receives the worker's log (a JSON line per task), e.g. to see where the time goes. */
  workerLog?: (line: string) => void;
}

export interface InProcessMeasurement {
  entities: number;
  ms: number;
  peakRssMb: number;
}

export interface CloudTasksBenchResult {
  inProcess: InProcessMeasurement;
  entities: number;
  ms: number;
  entitiesPerSecond: number;
  inProcessEntitiesPerSecond: number;
  /** Cloud Tasks over in-process entities/s; the target is at least 0.8. */
  ratio: number;
  dispatches: number;
  shards: number;
  workerPeakRssMb: number;
}

export async function runCloudTasksBench(options: CloudTasksBenchOptions): Promise<CloudTasksBenchResult> {
  const log = options.log ?? (() => undefined);
  const { emulatorHost, projectId } = options.connection;
  const inProcess = options.inProcess ?? measureInProcess(options, `bench_local_${randomBytes(3).toString('hex')}`);
  log(`in-process: ${inProcess.entities} entities in ${(inProcess.ms / 1000).toFixed(1)} s`);

  const field = `bench_tasks_${randomBytes(3).toString('hex')}`;
  const secret = randomBytes(24).toString('hex');
  const tasksEmulator = await startCloudTasksEmulator();
  const queue = `projects/${projectId}/locations/us-central1/queues/bench-${randomBytes(3).toString('hex')}`;
  const app = mkdtempSync(path.join(tmpdir(), 'dsm-bench-'));
  mkdirSync(path.join(app, 'migrations'));
  writeFileSync(
    path.join(app, 'migrations', '0001_bench.ts'),
    `import { defineMigration, AddFieldData } from 'datastore-migrate';\nexport default defineMigration({ operations: [new AddFieldData(${JSON.stringify(options.kind)}, ${JSON.stringify(field)}, { default: 'blue' })] });\n`,
  );
  const env = {
    ...process.env,
    DATASTORE_EMULATOR_HOST: emulatorHost,
    DATASTORE_PROJECT_ID: projectId,
    CLOUD_TASKS_EMULATOR_HOST: tasksEmulator.host,
    DSMIGRATE_TASKS_QUEUE: queue,
    DSMIGRATE_WORKER_SECRET: secret,
  };
  const port = await freePort();
  const store = await Datastore.connect({ emulatorHost, projectId });
  const tasks = createTasksClient(tasksEmulator.host);
  let worker: ChildProcess | undefined;
  try {
    worker = await spawnWorker(app, env, port, options.workerLog);
    const graph = await loadGraph([{ app: 'default', dir: path.join(app, 'migrations') }]);
    // As many slices at once as the in-process executor runs shards (bench/measure.ts: BENCH_CONCURRENCY, default 4).
    const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 4);
    const settings = resolveDispatchSettings({ workerUrl: `http://127.0.0.1:${port}/`, sliceSeconds: options.sliceSeconds ?? 60, queueSettings: { maxConcurrentDispatches: concurrency } }, env);
    const started = performance.now();
    const { run } = await startRun({ store, graph, tasks, settings, controlNamespace: CONTROL_NAMESPACE });
    if (!run) throw new Error('nothing to run');
    let finished = run;
    while (finished.status === 'running') {
      await new Promise((r) => setTimeout(r, 50));
      finished = (await loadRun(store, CONTROL_NAMESPACE, run.id))!;
    }
    const ms = performance.now() - started;
    if (finished.status !== 'done') throw new Error(`run ${run.id} ended ${finished.status}: ${finished.error}`);
    const totals = (await jobTotals(store, jobRef('', graph.ordered[0].id, 0, 0)))!;
    const entitiesPerSecond = totals.changed / (ms / 1000);
    const inProcessEntitiesPerSecond = inProcess.entities / (inProcess.ms / 1000);
    return {
      inProcess,
      entities: totals.changed,
      ms,
      entitiesPerSecond,
      inProcessEntitiesPerSecond,
      ratio: entitiesPerSecond / inProcessEntitiesPerSecond,
      dispatches: tasksEmulator.stats().dispatches,
      shards: totals.shardsTotal,
      workerPeakRssMb: peakRssMb(worker.pid),
    };
  } finally {
    worker?.kill('SIGTERM');
    await tasks.close();
    await tasksEmulator.stop();
    await store.close();
  }
}

/** bench/measure.ts mode a, in its own process as `npm run bench` runs it. */
function measureInProcess(options: CloudTasksBenchOptions, field: string): InProcessMeasurement {
  const result = spawnSync(process.execPath, ['--require', require.resolve('tsx/cjs'), path.join(ROOT, 'bench', 'measure.ts'), 'a', options.kind, field], {
    env: { ...process.env, DATASTORE_EMULATOR_HOST: options.connection.emulatorHost, DATASTORE_PROJECT_ID: options.connection.projectId },
    encoding: 'utf8',
  });
  if (result.status !== 0) throw new Error(`in-process measurement failed:\n${result.stderr}`);
  const measured = JSON.parse(result.stdout.trim().split('\n').pop()!) as InProcessMeasurement;
  return { entities: measured.entities, ms: measured.ms, peakRssMb: measured.peakRssMb };
}

function spawnWorker(cwd: string, env: NodeJS.ProcessEnv, port: number, workerLog: (line: string) => void = () => undefined): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--require', require.resolve('tsx/cjs'), path.join(ROOT, 'src', 'cli', 'main.ts'), 'worker', '--port', String(port), '--host', '127.0.0.1'], { cwd, env });
  return new Promise((resolve, reject) => {
    let output = '';
    const onData = (d: Buffer) => {
      output += d.toString();
      if (output.includes('listening on port')) resolve(child);
    };
    child.stderr.on('data', onData);
    child.stdout.on('data', (d: Buffer) => workerLog(d.toString()));
    child.on('exit', (code) => reject(new Error(`worker exited with ${code}:\n${output}`)));
  });
}

function peakRssMb(pid: number | undefined): number {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

export function formatCloudTasksBench(r: CloudTasksBenchResult): string {
  const row = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [
    row(['AddFieldData', 'entities', 'seconds', 'entities/s', 'vs in-process', 'tasks dispatched', 'peak RSS']),
    row(['---', '---:', '---:', '---:', '---:', '---:', '---:']),
    row(['in-process executor', String(r.inProcess.entities), (r.inProcess.ms / 1000).toFixed(1), r.inProcessEntitiesPerSecond.toFixed(0), '1.00×', '', `${r.inProcess.peakRssMb.toFixed(0)} MB`]),
    row([
      `Cloud Tasks emulator + 1 worker (${r.shards} shards)`,
      String(r.entities),
      (r.ms / 1000).toFixed(1),
      r.entitiesPerSecond.toFixed(0),
      `${r.ratio.toFixed(2)}×`,
      String(r.dispatches),
      `${r.workerPeakRssMb.toFixed(0)} MB (worker)`,
    ]),
  ].join('\n');
}

/** The data bench/run.ts seeds (same kind, shape and warm-up), for running this file alone. */
async function seed(store: Datastore, kind: string, count: number): Promise<void> {
  for (let start = 0; start < count; start += 10_000) {
    const entities: Entity[] = [];
    for (let i = start; i < Math.min(count, start + 10_000); i++) entities.push(Entity.from(Key.of(kind, i + 1), { n: i, name: `person-${i}`, email: `person${i}@example.com`, score: i % 100 }));
    await store.save(entities);
  }
  // The emulator's first large queries run cold (JIT): warm it as bench/run.ts does.
  for (let i = 0; i < 2; i++) for await (const batch of store.keys({ kind })) void batch;
}

async function main(): Promise<void> {
  scratchUntilExit();
  const { values } = parseArgs({ options: { entities: { type: 'string', default: '100000' }, slice: { type: 'string' }, 'worker-log': { type: 'boolean', default: false } } });
  const count = Number(values.entities);
  const emulator = await startDatastoreEmulator({ flavour: 'firestore', timeoutMs: 120_000 });
  const projectId = `bench-ct-${randomBytes(3).toString('hex')}`;
  try {
    const store = await Datastore.connect({ emulatorHost: emulator.host, projectId, concurrency: 8 });
    process.stderr.write(`seeding ${count} entities...\n`);
    await seed(store, 'BenchPerson', count);
    await store.close();
    const result = await runCloudTasksBench({
      connection: { emulatorHost: emulator.host, projectId },
      kind: 'BenchPerson',
      sliceSeconds: values.slice ? Number(values.slice) : undefined,
      log: (line) => process.stderr.write(`${line}\n`),
      workerLog: values['worker-log'] ? (text) => process.stderr.write(text) : undefined,
    });
    process.stdout.write(`${formatCloudTasksBench(result)}\n`);
  } finally {
    await emulator.stop();
  }
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  });
}
