// `npm run bench -- --cold`: `dsmigrate migrate` as a user runs it, in a temporary app that installed
// the packed package, timed from the process's start to its exit.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import ts from 'typescript';
import type { Measurement } from './measure';

const REPO = path.join(__dirname, '..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** Packs this repository as npm would publish it, installs it into a new app, and gives it one AddFieldData migration. */
export function installBenchApp(kind: string): string {
  const packDir = mkdtempSync(path.join(tmpdir(), 'dsm-bench-pack-'));
  execFileSync(npm, ['pack', '--silent', '--pack-destination', packDir], { cwd: REPO, stdio: ['ignore', 'ignore', 'inherit'] });
  const tarball = path.join(
    packDir,
    readdirSync(packDir).find((f) => f.endsWith('.tgz'))!,
  );
  const app = mkdtempSync(path.join(tmpdir(), 'dsm-bench-app-'));
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'bench-app', private: true, dependencies: { 'datastore-migrate': `file:${tarball}` } }));
  execFileSync(npm, ['install', '--no-audit', '--no-fund', '--loglevel', 'error'], { cwd: app, stdio: ['ignore', 'ignore', 'inherit'] });
  mkdirSync(path.join(app, 'migrations'));
  writeFileSync(
    path.join(app, 'migrations', '0001_add_field.ts'),
    `import { defineMigration, AddFieldData } from 'datastore-migrate';\n\nexport default defineMigration({\n  operations: [new AddFieldData(${JSON.stringify(kind)}, process.env.BENCH_FIELD!, { default: 'blue' })],\n});\n`,
  );
  return app;
}

/** GNU time: the CLI's CPU (user + system) and peak RSS as the kernel counted them for the whole process, from wait4(2). */
const TIME = '/usr/bin/time';

/** The kernel's high-water mark of a process's resident memory, while it runs: where there is no GNU time. */
function peakRssKb(pid: number): number {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

/** Runs the installed `dsmigrate migrate` on the emulator, in a new process with node's defaults, and times it. */
export function measureCli(app: string, host: string, projectId: string, field: string): Promise<Measurement> {
  return new Promise((resolve, reject) => {
    const bin = path.join(app, 'node_modules', '.bin', 'dsmigrate');
    const usage = existsSync(TIME) ? path.join(mkdtempSync(path.join(tmpdir(), 'dsm-bench-time-')), 'usage') : undefined;
    const started = performance.now();
    const [command, args] = usage ? [TIME, ['-f', '%U %S %M', '-o', usage, bin, 'migrate', '--json']] : [bin, ['migrate', '--json']];
    const child = spawn(command, args, {
      cwd: app,
      env: { ...process.env, DATASTORE_EMULATOR_HOST: host, DATASTORE_PROJECT_ID: projectId, BENCH_FIELD: field, NODE_OPTIONS: '' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let peakKb = 0;
    // The high-water mark only grows: polled until the process ends, it misses at most the last 50 ms.
    const poll = usage ? undefined : setInterval(() => (peakKb = Math.max(peakKb, peakRssKb(child.pid!))), 50);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => {
      clearInterval(poll);
      const ms = performance.now() - started;
      if (code !== 0) return reject(new Error(`dsmigrate migrate exited with ${code}: ${out.slice(-2000)}`));
      const events = out
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as { event?: string; state?: string; progress?: { changed: number } });
      const done = events.find((e) => e.event === 'migration-done');
      const changed = events.filter((e) => e.progress).pop()?.progress?.changed;
      if (done?.state !== 'applied' || changed === undefined) return reject(new Error(`dsmigrate migrate did not apply the migration: ${out.slice(-2000)}`));
      if (!usage) return resolve({ mode: 'a', entities: changed, ms, peakRssMb: peakKb / 1024 });
      const [user, system, maxKb] = readFileSync(usage, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
      resolve({ mode: 'a', entities: changed, ms, peakRssMb: maxKb / 1024, cpuSeconds: user + system });
    });
  });
}

/**
 * bench/measure.ts compiled to plain JavaScript with the repository's compiler options (into dist/, which
 * resolves the repository's node_modules), so that cold runs start every measurement as `node script.js`:
 * timed from spawn to exit like the CLI, with no TypeScript loader in the way.
 */
export function compileMeasure(): string {
  const configPath = path.join(REPO, 'tsconfig.json');
  const { config } = ts.readConfigFile(configPath, (file) => ts.sys.readFile(file));
  const { options } = ts.parseJsonConfigFileContent(config, ts.sys, REPO);
  const outDir = path.join(REPO, 'dist', 'bench-cold');
  const program = ts.createProgram([path.join(__dirname, 'measure.ts')], { ...options, outDir, declaration: false, sourceMap: false, types: ['node'] });
  const { diagnostics } = program.emit();
  const errors = [...ts.getPreEmitDiagnostics(program), ...diagnostics];
  if (errors.length > 0) throw new Error(ts.formatDiagnostics(errors, { getCanonicalFileName: (f) => f, getCurrentDirectory: () => REPO, getNewLine: () => '\n' }));
  return path.join(outDir, 'bench', 'measure.js');
}
