import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Datastore, Entity, Key } from '../../src/datastore';
import { freePort } from '../../emulator/datastore-emulator';
import { REPO } from '../support/cli';
import { emulatorHosts, uniqueProject } from '../support/emulators';

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** Packs this repository as npm would publish it and installs it into a new app. */
function installPackedApp(): string {
  const packDir = mkdtempSync(path.join(tmpdir(), 'dsm-pack-'));
  execFileSync(npm, ['pack', '--silent', '--pack-destination', packDir], { cwd: REPO, stdio: ['ignore', 'ignore', 'inherit'] });
  const tarball = path.join(
    packDir,
    readdirSync(packDir).find((f) => f.endsWith('.tgz'))!,
  );
  const app = mkdtempSync(path.join(tmpdir(), 'dsm-user-'));
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'user-app', private: true, dependencies: { 'datastore-migrate': `file:${tarball}` } }));
  execFileSync(npm, ['install', '--no-audit', '--no-fund', '--loglevel', 'error'], { cwd: app, stdio: ['ignore', 'ignore', 'inherit'] });
  return app;
}

/** A folder of the app with its own migrations: each case runs dsmigrate there, as from its own project. */
function appFolder(app: string, name: string, migrations: Record<string, string>): string {
  const dir = path.join(app, name);
  mkdirSync(path.join(dir, 'migrations'), { recursive: true });
  for (const [file, source] of Object.entries(migrations)) writeFileSync(path.join(dir, 'migrations', file), source);
  return dir;
}

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

// Past the pack and install, the app calls the installed bin as its npm scripts would.
const bin = (app: string): string => path.join(app, 'node_modules', '.bin', 'dsmigrate');

/** Runs the installed dsmigrate to its end without blocking: the worker and the emulator it talks to are children of this process too. */
function dsmigrate(app: string, cwd: string, args: string[], env: NodeJS.ProcessEnv): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin(app), args, { cwd, env: { ...env, FORCE_COLOR: '0' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

interface Started {
  child: ChildProcess;
  /** The first JSON line it printed on stdout. */
  json: Record<string, string | number>;
  /** Everything it wrote to stderr so far. */
  stderr(): string;
}

/** A long-running dsmigrate (emulator, worker), once it printed its first JSON line on stdout. */
async function startDsmigrate(app: string, cwd: string, args: string[], env: NodeJS.ProcessEnv, started: ChildProcess[]): Promise<Started> {
  const child = spawn(bin(app), args, { cwd, env: { ...env, FORCE_COLOR: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(child);
  let stdout = '';
  let stderr = '';
  // Keep reading both pipes for the child's whole life: a full pipe would stall it.
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const json = await new Promise<Started['json']>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      const line = stdout.split('\n').find((l) => l.startsWith('{'));
      if (line) resolve(JSON.parse(line) as Started['json']);
      stdout = stdout.slice(-8000);
    });
    child.on('exit', (code) => reject(new Error(`dsmigrate ${args.join(' ')} exited with ${code} before printing JSON:\n${stdout}${stderr}`)));
  });
  return { child, json, stderr: () => stderr };
}

/** SIGTERM, as Ctrl-C or a container stop would; the exit code, or SIGKILL after a while. */
function terminate(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('exit', (code) => {
      clearTimeout(force);
      resolve(code);
    });
    child.kill('SIGTERM');
  });
}

async function answers(host: string): Promise<boolean> {
  try {
    return (await fetch(`http://${host}/`, { signal: AbortSignal.timeout(2000) })).ok;
  } catch {
    return false;
  }
}

const keys = (kind: string, n: number): Key[] => Array.from({ length: n }, (_, i) => Key.of(kind, i + 1));

// Packing and installing takes a while: once per file, against the first emulator running.
const [flavour, host] = Object.entries(emulatorHosts())[0];

describe(`a user outside the repo [${flavour}]`, () => {
  let app: string;
  const started: ChildProcess[] = [];
  const opened: Datastore[] = [];
  const connect = async (emulatorHost: string, projectId: string): Promise<Datastore> => {
    const store = await Datastore.connect({ emulatorHost, projectId });
    opened.push(store);
    return store;
  };

  beforeAll(() => {
    app = installPackedApp();
  }, 300_000);

  afterAll(async () => {
    await Promise.all(started.map(terminate));
    await Promise.all(opened.map((s) => s.close()));
  }, 60_000);

  it('installs the packed package and runs npx dsmigrate migrate on a .ts migration', async () => {
    const cwd = appFolder(app, 'colour', {
      '0001_add_colour.ts': `import { defineMigration, AddFieldData } from 'datastore-migrate';\n\nexport default defineMigration({\n  operations: [new AddFieldData('Person', 'colour', { default: 'blue' })],\n});\n`,
    });
    const projectId = uniqueProject('u');
    const store = await connect(host, projectId);
    await store.save(keys('Person', 40).map((key, i) => Entity.from(key, { name: `p${i}` })));
    const env = { ...process.env, DATASTORE_EMULATOR_HOST: host, DATASTORE_PROJECT_ID: projectId };
    const run = (args: string[]) => spawnSync('npx', ['--no-install', 'dsmigrate', ...args], { cwd, env, encoding: 'utf8' });

    const migrate = run(['migrate']);
    expect(migrate.stderr).not.toMatch(/Error|Warning/);
    expect(migrate.status).toBe(0);
    for (const e of await store.lookup(keys('Person', 40))) expect(e!.get('colour')).toBe('blue');

    const status = run(['status', '--json']);
    expect(status.status).toBe(0);
    expect(JSON.parse(status.stdout)).toEqual([expect.objectContaining({ app: 'default', name: '0001_add_colour', state: 'applied' })]);
    // Nothing to watch once the run ended: the message names the flag that picks an ended run.
    const idle = run(['status', '--watch']);
    expect(idle.status).toBe(2);
    expect(idle.stderr).toMatch(/No run is under way to watch.*--run <id>/);

    // dsmigrate verify passes on the migrated data, and names the key an old writer left without the field.
    const verified = run(['verify']);
    expect(verified.status).toBe(0);
    expect(verified.stdout).toMatch(/ok .*0001_add_colour.*40 entities/);
    await store.save([Entity.from(Key.of('Person', 'written-behind'), { name: 'old code' })]);
    const caught = run(['verify', '--json']);
    expect(caught.status).toBe(1);
    const summary = JSON.parse(caught.stdout.split('\n').find((l) => l.includes('"summary"'))!) as { ok: boolean; verdicts: { failed: number; samples: { key: string; problem: string }[] }[] };
    expect(summary.ok).toBe(false);
    expect(summary.verdicts[0]).toMatchObject({ failed: 1, samples: [{ key: 'Person:"written-behind"', problem: 'lacks colour' }] });
  }, 120_000);

  it('refuses the migration `dsmigrate create` writes until operations are added to it: exit 2, naming the file', async () => {
    const cwd = appFolder(app, 'fresh', {});
    const env = { ...process.env, DATASTORE_EMULATOR_HOST: host, DATASTORE_PROJECT_ID: uniqueProject('u') };

    const create = await dsmigrate(app, cwd, ['create', 'add_thing'], env);
    expect(create.code).toBe(0);
    expect(existsSync(path.join(cwd, 'migrations', '0001_add_thing.ts'))).toBe(true);

    const migrate = await dsmigrate(app, cwd, ['migrate'], env);
    expect(migrate.code).toBe(2);
    expect(migrate.stderr).toMatch(/0001_add_thing\.ts has no operations: add at least one/);
  }, 120_000);

  it('fails a map that assigns entity.counter as with @google-cloud/datastore on its first entity, says to use entity.set, and writes nothing', async () => {
    const cwd = appFolder(app, 'assigning', {
      // As a user of @google-cloud/datastore writes it; jiti loads .ts without type checking, as plain JavaScript would run.
      '0001_count.ts': `import { defineMigration, MapFunctionOnEntities } from 'datastore-migrate';\n\nexport default defineMigration({\n  operations: [\n    new MapFunctionOnEntities('Tally', (entity: any) => {\n      entity.counter = entity.counter + 1;\n      return entity;\n    }),\n  ],\n});\n`,
    });
    const projectId = uniqueProject('u');
    const store = await connect(host, projectId);
    await store.save(keys('Tally', 30).map((key, i) => Entity.from(key, { counter: 0, name: `t${i}` })));
    const env = { ...process.env, DATASTORE_EMULATOR_HOST: host, DATASTORE_PROJECT_ID: projectId };

    const migrate = await dsmigrate(app, cwd, ['migrate'], env);
    expect(migrate.code).toBe(1);
    expect(migrate.stderr).toMatch(/assigned entity\.counter, which an Entity does not store: write entity\.set\('counter', value\) instead/);
    const after = await store.lookup(keys('Tally', 30));
    expect(after.map((e) => e!.toObject())).toEqual(keys('Tally', 30).map((_, i) => ({ counter: 0, name: `t${i}` })));

    const status = await dsmigrate(app, cwd, ['status', '--json'], env);
    expect(JSON.parse(status.stdout)).toEqual([expect.objectContaining({ name: '0001_count', state: 'failed' })]);
  }, 120_000);

  it('runs dsmigrate emulator, dsmigrate worker and migrate --executor cloud-tasks under injected faults: every entity +1 exactly once', async () => {
    const cwd = appFolder(app, 'cloud', {
      '0001_increment.ts': `import { defineMigration, MapFunctionOnEntities } from 'datastore-migrate';\n\nexport default defineMigration({\n  operations: [\n    new MapFunctionOnEntities('Counter', (entity) => {\n      entity.set('value', (entity.get('value') as number) + 1);\n    }, { shardCount: 6 }),\n  ],\n});\n`,
    });
    const workerPort = await freePort();
    // Seed 6 fails or repeats some of the run's first dispatches (it has only a dozen or so); --verbose
    // logs one line per dispatch on stderr, to show that the faults did happen.
    const faults = ['--fail-fraction', '0.2', '--duplicate-fraction', '0.1', '--seed', '6', '--verbose'];
    const emulator = await startDsmigrate(app, cwd, ['emulator', '--json', '--worker-port', String(workerPort), ...faults], process.env, started);
    const emulatorEnv = emulator.json as Record<string, string>;
    expect(Object.keys(emulatorEnv).sort()).toEqual(
      ['CLOUD_TASKS_EMULATOR_HOST', 'DATASTORE_EMULATOR_HOST', 'DATASTORE_PROJECT_ID', 'DSMIGRATE_TASKS_QUEUE', 'DSMIGRATE_WORKER_SECRET', 'DSMIGRATE_WORKER_URL'].sort(),
    );
    expect(emulatorEnv.DSMIGRATE_WORKER_URL).toBe(`http://127.0.0.1:${workerPort}/`);

    const store = await connect(emulatorEnv.DATASTORE_EMULATOR_HOST, emulatorEnv.DATASTORE_PROJECT_ID);
    const count = 120;
    await store.save(keys('Counter', count).map((key) => Entity.from(key, { value: 0 })));

    // What the emulator printed is all the worker and the CLI are given.
    const env = { ...process.env, ...emulatorEnv };
    const worker = await startDsmigrate(app, cwd, ['worker', '--json', '--port', String(workerPort)], env, started);
    expect(worker.json).toMatchObject({ event: 'listening', port: workerPort, auth: 'hmac' });

    const migrate = await dsmigrate(app, cwd, ['migrate', '--executor', 'cloud-tasks'], env);
    expect(migrate.stderr).not.toMatch(/Error/);
    expect(migrate.code).toBe(0);

    const values: unknown[] = [];
    for await (const entity of store.query({ kind: 'Counter' })) values.push(entity.get('value'));
    expect(values).toHaveLength(count);
    expect(values.every((v) => v === 1)).toBe(true);
    const status = await dsmigrate(app, cwd, ['status', '--json'], env);
    expect(JSON.parse(status.stdout)).toEqual([expect.objectContaining({ name: '0001_increment', state: 'applied' })]);
    // The run stays listed, and any machine can watch it by id: its end is told again with its counts.
    const { runs } = JSON.parse((await dsmigrate(app, cwd, ['status', '--json', '--runs'], env)).stdout) as { runs: { id: string; status: string; driver: string }[] };
    expect(runs[0]).toMatchObject({ status: 'done', driver: 'cloud-tasks' });
    const watched = await dsmigrate(app, cwd, ['status', '--watch', '--json', '--run', runs[0].id], env);
    expect(watched.code).toBe(0);
    const told = watched.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(told.find((e) => e.event === 'operation-done')).toMatchObject({ result: { scanned: count, changed: count } });
    expect(told.at(-1)).toMatchObject({ event: 'summary', applied: ['default:0001_increment'] });

    expect(emulator.stderr()).toMatch(/attempt \d+: HTTP status 503 \(injected by the emulator, not sent\)/);
    expect(emulator.stderr()).toMatch(/^duplicate delivery of /m);

    // SIGTERM stops the emulator command and both emulators with it.
    expect(await terminate(worker.child)).toBe(0);
    expect(await terminate(emulator.child)).toBe(0);
    expect(await answers(emulatorEnv.DATASTORE_EMULATOR_HOST)).toBe(false);
  }, 240_000);
});
