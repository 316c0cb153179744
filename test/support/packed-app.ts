import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import ts from 'typescript';
import { REPO } from './cli';

/* The package as a user installs it: packed by npm, installed into a new app, run through its bin. */

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

const repoVersion = (name: string): string => (JSON.parse(readFileSync(path.join(REPO, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;

/**
 * Packs this repository as npm would publish it and installs it into a new app, with the TypeScript a
 * TypeScript app has (this repository's versions); `log` is what npm printed, at its default log level.
 */
export function installPackedApp(): { app: string; log: string } {
  const packDir = mkdtempSync(path.join(tmpdir(), 'dsm-pack-'));
  execFileSync(npm, ['pack', '--silent', '--pack-destination', packDir], { cwd: REPO, stdio: ['ignore', 'ignore', 'inherit'] });
  const tarball = path.join(
    packDir,
    readdirSync(packDir).find((f) => f.endsWith('.tgz'))!,
  );
  const app = mkdtempSync(path.join(tmpdir(), 'dsm-user-'));
  const devDependencies = { typescript: repoVersion('typescript'), '@types/node': repoVersion('@types/node') };
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'user-app', private: true, dependencies: { 'datastore-migrate': `file:${tarball}` }, devDependencies }));
  const install = spawnSync(npm, ['install', '--no-audit', '--no-fund', '--prefer-offline'], { cwd: app, encoding: 'utf8' });
  if (install.status !== 0) throw new Error(`npm install of the packed package failed:\n${install.stdout}${install.stderr}`);
  return { app, log: install.stdout + install.stderr };
}

/**
 * The packed app, packed and installed once per jest run whichever test file asks first: packing runs the
 * build, and two builds at once would write the same dist/. The first asker takes a lock (an exclusive
 * mkdir) and the others wait for its result.
 */
export async function packedApp(): Promise<{ app: string; log: string }> {
  const shared = process.env.DSM_TEST_PACKED_DIR;
  if (!shared) return installPackedApp();
  const result = path.join(shared, 'result.json');
  let mine = false;
  try {
    mkdirSync(path.join(shared, 'lock'));
    mine = true;
  } catch {
    // Another test file packs; wait below.
  }
  if (mine) {
    try {
      writeFileSync(result, JSON.stringify(installPackedApp()));
    } catch (error) {
      writeFileSync(result, JSON.stringify({ error: String((error as Error).stack ?? error) }));
    }
  }
  for (let waited = 0; !existsSync(result); waited += 500) {
    if (waited > 600_000) throw new Error(`No packed app in ${shared} after 10 minutes.`);
    await sleep(500);
  }
  const outcome = JSON.parse(readFileSync(result, 'utf8')) as { app: string; log: string } | { error: string };
  if ('error' in outcome) throw new Error(`Packing the package failed in another test file:\n${outcome.error}`);
  return outcome;
}

/** The installed package, as a user's app has it. */
export const installed = (app: string): string => path.join(app, 'node_modules', 'datastore-migrate');

/** Every name the package's type entry exports, and whether it is a value (a type otherwise). */
export function publicExports(app: string): { name: string; value: boolean }[] {
  const pkg = JSON.parse(readFileSync(path.join(installed(app), 'package.json'), 'utf8')) as { types: string };
  const entry = path.join(installed(app), pkg.types);
  const program = ts.createProgram([entry], { noEmit: true });
  const checker = program.getTypeChecker();
  return checker.getExportsOfModule(checker.getSymbolAtLocation(program.getSourceFile(entry)!)!).map((symbol) => {
    const target = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
    return { name: symbol.name, value: (target.flags & ts.SymbolFlags.Value) !== 0 };
  });
}

/** A TypeScript project of the app: its own package.json (for `type`), tsconfig.json and files. */
export function tsProject(app: string, name: string, type: 'commonjs' | 'module', compilerOptions: Record<string, unknown>, files: Record<string, string>): string {
  const dir = path.join(app, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, private: true, type }));
  const strict = { strict: true, skipLibCheck: false, target: 'es2022', outDir: 'dist', rootDir: '.' };
  writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { ...strict, ...compilerOptions }, include: ['**/*.ts'], exclude: ['dist'] }));
  for (const [file, source] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    writeFileSync(path.join(dir, file), source);
  }
  return dir;
}

/** The app's own tsc, as `npx tsc` would run it from the app (npx from a sub-package would look elsewhere). */
export const tsc = (app: string, dir: string, args: string[] = []) =>
  spawnSync(process.execPath, [path.join(app, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir, '--pretty', 'false', ...args], { encoding: 'utf8' });

/** A folder of the app with its own migrations: each case runs dsmigrate there, as from its own project. */
export function appFolder(app: string, name: string, migrations: Record<string, string>): string {
  const dir = path.join(app, name);
  mkdirSync(path.join(dir, 'migrations'), { recursive: true });
  for (const [file, source] of Object.entries(migrations)) writeFileSync(path.join(dir, 'migrations', file), source);
  return dir;
}

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

// Past the pack and install, the app calls the installed bin as its npm scripts would.
export const bin = (app: string): string => path.join(app, 'node_modules', '.bin', 'dsmigrate');

/** Runs the installed dsmigrate to its end without blocking: the worker and the emulator it talks to are children of this process too. */
export function dsmigrate(app: string, cwd: string, args: string[], env: NodeJS.ProcessEnv): Promise<Result> {
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

export interface Started {
  child: ChildProcess;
  /** The first JSON line it printed on stdout. */
  json: Record<string, string | number>;
  /** Everything it wrote to stderr so far. */
  stderr(): string;
}

/** A long-running dsmigrate (emulator, worker), once it printed its first JSON line on stdout. */
export async function startDsmigrate(app: string, cwd: string, args: string[], env: NodeJS.ProcessEnv, started: ChildProcess[]): Promise<Started> {
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
export function terminate(child: ChildProcess): Promise<number | null> {
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
