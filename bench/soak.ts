/**
 * `npm run soak [-- --entities 200000] [-- --datastore-faults 0.02] [-- --datastore-latency-ms 1000[,jitter]] [-- --seed 7]`: a Cloud Tasks run of a
 * counting map over the entities, with two worker processes behind one address (as Cloud Run serves
 * them), each killed with SIGKILL at a random moment every 20–40 s and started again; the Cloud Tasks
 * emulator's dispatch faults on, and the Datastore proxy (emulator/datastore-proxy) failing a share of the
 * workers' RPCs, unknown commit outcomes included, and with a latency adding production's milliseconds to
 * each (a run long enough to meet many kills). It must end exact: every entity counted once. Writes
 * the `soak` section of bench/results.md.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startCloudTasksEmulator } from '../emulator/cloud-tasks';
import { freePort, startDatastoreEmulator } from '../emulator/datastore-emulator';
import { parseLatency, startDatastoreProxy } from '../emulator';
import { Datastore, Entity, Key } from '../src/datastore';
import { createTasksClient, resolveDispatchSettings, startRun } from '../src/executors/cloud-tasks';
import { loadGraph, loadRun, type RunState } from '../src/migrations';
import { writeSection } from './results';
import { scratchUntilExit } from './scratch';

const ROOT = path.resolve(__dirname, '..');
const KIND = 'SoakCounter';
const CONTROL_NAMESPACE = 'soak';
/** The dispatch faults of the Cloud Tasks emulator: failed, duplicated, overlapping and unanswered deliveries. */
const TASK_FAULTS = { failFraction: 0.05, duplicateFraction: 0.05, lostAnswerFraction: 0.05, overlappingDuplicateFraction: 0.05 };

const log = (line: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A worker process on a fixed port, killed and started again by the soak. */
class Worker {
  child?: ChildProcess;
  kills = 0;

  constructor(
    readonly port: number,
    private readonly cwd: string,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  /** Starts it, again if it fails to (a loaded machine can make its start-up check of Datastore time out), as a container would be restarted. */
  async start(attempts = 5): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.startOnce();
      } catch (error) {
        if (attempt >= attempts) throw error;
        log(`the worker on port ${this.port} failed to start (${String(error).split('\n')[0]}); starting it again`);
        await sleep(1000);
      }
    }
  }

  private async startOnce(): Promise<void> {
    const child = spawn(process.execPath, ['--require', require.resolve('tsx/cjs'), path.join(ROOT, 'src', 'cli', 'main.ts'), 'worker', '--port', String(this.port), '--host', '127.0.0.1'], {
      cwd: this.cwd,
      env: this.env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.child = child;
    await new Promise<void>((resolve, reject) => {
      let output = '';
      child.stderr!.on('data', (d: Buffer) => {
        output = (output + d.toString()).slice(-4000);
        if (output.includes('listening on port')) resolve();
      });
      child.once('exit', (code, signal) => reject(new Error(`worker on port ${this.port} exited (${code ?? signal}) before listening:\n${output}`)));
    });
  }

  get alive(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (!child || !this.alive) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    this.kills++;
  }
}

/** One address for both workers, as a load balancer gives them: a request goes to a live one, or is answered 503 (Cloud Tasks retries it). */
async function front(workers: readonly Worker[]): Promise<{ url: string; close(): Promise<void> }> {
  let next = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const live = workers.filter((w) => w.alive);
    if (live.length === 0) return void res.writeHead(503).end('no worker');
    const worker = live[next++ % live.length];
    const forward = request({ host: '127.0.0.1', port: worker.port, path: req.url, method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    forward.on('error', () => (res.headersSent ? res.destroy() : res.writeHead(503).end('worker gone')));
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

async function seed(store: Datastore, count: number): Promise<void> {
  for (let start = 0; start < count; start += 10_000) {
    const batch: Entity[] = [];
    for (let i = start; i < Math.min(count, start + 10_000); i++) batch.push(Entity.from(Key.of(KIND, i + 1), { n: 0, name: `c${i}` }));
    await store.save(batch);
  }
}

/** Every entity's count: how many are at 1 (exact), and the keys of any other. */
async function tally(store: Datastore): Promise<{ exact: number; wrong: string[]; total: number }> {
  const out = { exact: 0, wrong: [] as string[], total: 0 };
  for await (const batch of store.queryBatches({ kind: KIND })) {
    for (const entity of batch) {
      out.total++;
      if (entity.get('n') === 1) out.exact++;
      else if (out.wrong.length < 10) out.wrong.push(`${entity.key} n=${String(entity.get('n'))}`);
    }
  }
  return out;
}

async function main(): Promise<void> {
  scratchUntilExit();
  const { values } = parseArgs({
    options: {
      entities: { type: 'string', default: '200000' },
      'datastore-faults': { type: 'string', default: '0.02' },
      // Without a delay the run ends before the first kill (26 s at 200,000 entities here), and meets none.
      'datastore-latency-ms': { type: 'string', default: '1000' },
      seed: { type: 'string', default: '7' },
    },
  });
  const entities = Number(values.entities);
  const faultFraction = Number(values['datastore-faults']);
  const { latencyMs, latencyJitterMs } = parseLatency(values['datastore-latency-ms']);
  const seedValue = Number(values.seed);
  const emulator = await startDatastoreEmulator({ flavour: 'firestore', timeoutMs: 120_000 });
  const projectId = 'soak';
  const direct = await Datastore.connect({ emulatorHost: emulator.host, projectId, concurrency: 8 });
  const proxy = await startDatastoreProxy({ target: emulator.host, faultFraction, latencyMs, latencyJitterMs, seed: seedValue });
  const tasksEmulator = await startCloudTasksEmulator({ seed: seedValue, ...TASK_FAULTS });
  const tasks = createTasksClient(tasksEmulator.host);
  const workers: Worker[] = [];
  let stopKilling = false;
  let balancer: Awaited<ReturnType<typeof front>> | undefined;
  try {
    log(`seeding ${entities.toLocaleString('en-US')} entities`);
    await seed(direct, entities);
    const app = mkdtempSync(path.join(tmpdir(), 'dsm-soak-'));
    mkdirSync(path.join(app, 'migrations'));
    writeFileSync(
      path.join(app, 'migrations', '0001_count.ts'),
      `import { defineMigration, MapFunctionOnEntities } from 'datastore-migrate';\nexport default defineMigration({ operations: [new MapFunctionOnEntities(${JSON.stringify(KIND)}, (e) => void e.set('n', Number(e.get('n')) + 1))] });\n`,
    );
    const secret = 'soak-secret-0123456789abcdef';
    const queue = `projects/${projectId}/locations/us-central1/queues/soak`;
    // The workers reach Datastore through the proxy; this process starts the run on the emulator itself.
    const env = { ...process.env, DATASTORE_EMULATOR_HOST: proxy.host, DATASTORE_PROJECT_ID: projectId, CLOUD_TASKS_EMULATOR_HOST: tasksEmulator.host, DSMIGRATE_WORKER_SECRET: secret };
    for (let i = 0; i < 2; i++) workers.push(new Worker(await freePort(), app, env));
    await Promise.all(workers.map((w) => w.start()));
    balancer = await front(workers);
    // Each worker: SIGKILL at a random moment every 20–40 s, and started again.
    const killing = workers.map(async (worker) => {
      while (!stopKilling) {
        const wait = 20_000 + Math.random() * 20_000;
        for (let waited = 0; waited < wait && !stopKilling; waited += 250) await sleep(250);
        if (stopKilling) return;
        await worker.kill();
        log(`killed the worker on port ${worker.port} (kill ${worker.kills})`);
        await worker.start();
      }
    });
    const graph = await loadGraph([{ app: 'default', dir: path.join(app, 'migrations') }]);
    const settings = resolveDispatchSettings({ workerUrl: balancer.url, queue, sliceSeconds: 20, maxStepAttempts: 1000 }, env);
    const started = performance.now();
    const { run } = await startRun({ store: direct, graph, tasks, settings, controlNamespace: CONTROL_NAMESPACE });
    if (!run) throw new Error('nothing to run');
    let state: RunState = run;
    while (state.status === 'running') {
      await sleep(1000);
      state = (await loadRun(direct, CONTROL_NAMESPACE, run.id)) ?? state;
    }
    const seconds = (performance.now() - started) / 1000;
    stopKilling = true;
    await Promise.all(killing);
    const counted = await tally(direct);
    const kills = workers.reduce((sum, w) => sum + w.kills, 0);
    const exact = state.status === 'done' && counted.exact === entities && counted.total === entities;
    if (kills === 0) {
      // A soak that met no kill has shown nothing of what it is for: its figures would replace the last real ones.
      log(
        `the run ended ${exact ? 'exact' : 'NOT exact'} in ${seconds.toFixed(0)} s, before the first kill: nothing written to bench/results.md; run it again with a larger --datastore-latency-ms or --entities`,
      );
      process.exitCode = 1;
      return;
    }
    const report = proxy.report();
    const stats = tasksEmulator.stats();
    const injected = Object.entries(report.counts.injected)
      .map(
        ([method, codes]) =>
          `${method}: ${Object.entries(codes ?? {})
            .map(([code, n]) => `${code} ${n}`)
            .join(', ')}`,
      )
      .join('; ');
    const body = [
      `### Soak: a Cloud Tasks run through worker crashes, ${entities.toLocaleString('en-US')} entities`,
      '',
      `A counting \`MapFunctionOnEntities\` (n → n + 1) over ${entities.toLocaleString('en-US')} entities, run by \`startRun\` on the Cloud Tasks emulator with its dispatch faults on (${Object.entries(
        TASK_FAULTS,
      )
        .map(([k, v]) => `${k} ${v}`)
        .join(
          ', ',
        )}), two worker processes behind one address, each killed with SIGKILL every 20–40 s and started again, and the Datastore proxy failing ${faultFraction * 100}% of the workers' RPCs with every fault code (unknown commit outcomes included)${latencyMs || latencyJitterMs ? ` and delaying each by ${latencyMs} ms${latencyJitterMs ? ` (+ up to ${latencyJitterMs} ms)` : ''}` : ''}, seed ${seedValue}. Firestore-mode emulator, ${os.cpus().length} cores.`,
      '',
      '| | |',
      '| --- | --- |',
      `| run | ${state.status}${state.error ? ` (${state.error.slice(0, 200)})` : ''} in ${seconds.toFixed(0)} s |`,
      `| entities counted exactly once | **${counted.exact.toLocaleString('en-US')} of ${entities.toLocaleString('en-US')}**${counted.wrong.length ? ` (wrong: ${counted.wrong.join(', ')})` : ''} |`,
      `| worker kills survived | **${kills}** |`,
      `| task attempts (the Cloud Tasks emulator's count) | ${stats.dispatches}: ${stats.successes} answered 2xx, ${stats.failures} failed and retried (${stats.injectedFailures} injected, ${stats.lostAnswers} answers lost, ${stats.timeouts} timed out; the rest refused by a worker, or sent to one being killed), ${stats.duplicates} duplicated, ${stats.overlappingDuplicates} overlapping duplicates |`,
      `| Datastore faults injected | ${report.counts.totalInjected} (${injected}) |`,
      `| entities written more than once a second, sustained 10 s (proxy) | ${report.hotDocuments.length ? report.hotDocuments.map((h) => JSON.stringify(h)).join('; ') : 'none'} |`,
      '',
      exact ? 'It ended exact.' : '**It did not end exact.**',
    ].join('\n');
    writeSection('soak', body);
    if (!exact) process.exitCode = 1;
  } finally {
    stopKilling = true;
    await Promise.all(workers.map((w) => w.kill()));
    await balancer?.close();
    await tasks.close();
    await tasksEmulator.stop();
    await proxy.stop();
    await direct.close();
    await emulator.stop();
  }
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  });
}
