import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export const REPO = path.resolve(__dirname, '..', '..');
const CLI = path.join(REPO, 'src', 'cli', 'main.ts');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** The events a `--json` run printed, a JSON object a line; `T` names the fields a test reads. */
export function jsonEvents<T extends { event: string } = { event: string; [k: string]: unknown }>(result: Pick<CliResult, 'stdout'>): T[] {
  return result.stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as T);
}

/** Runs `dsmigrate` from source as a separate process, exactly as a user's shell would; `onLine` sees each stdout line as it arrives. */
export function runCli(
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; onSpawn?: (kill: () => void) => void; onLine?: (line: string) => void; signal?: NodeJS.Signals },
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--require', require.resolve('tsx/cjs'), CLI, ...args], { cwd: options.cwd, env: { ...options.env, FORCE_COLOR: '0' } });
    let stdout = '';
    let stderr = '';
    let pending = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      pending += d.toString();
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const line of lines) options.onLine?.(line);
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    options.onSpawn?.(() => child.kill(options.signal ?? 'SIGKILL'));
  });
}

/** A throwaway app directory with the given files (paths relative to it). */
export function tempApp(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'dsm-app-'));
  for (const [name, content] of Object.entries(files)) {
    const file = path.join(dir, name);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, content);
  }
  return dir;
}

/**
 * Pauses a CLI process at a deterministic point (src/sharding/test-pause.ts): once `batches` batches have
 * committed it writes `file`, and holds every later batch until the file is removed.
 */
export function pausing(env: NodeJS.ProcessEnv, batches: number): { env: NodeJS.ProcessEnv; file: string } {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'dsm-pause-')), 'paused');
  return { file, env: { ...env, DSMIGRATE_TEST_PAUSE_AFTER_BATCHES: String(batches), DSMIGRATE_TEST_PAUSE_FILE: file } };
}

/** Pauses a CLI process when it reaches a named point of its run (src/sharding/test-pause.ts pauseAt), until `file` is removed. */
export function pausingAt(env: NodeJS.ProcessEnv, point: string): { env: NodeJS.ProcessEnv; file: string } {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'dsm-pause-')), 'paused');
  return { file, env: { ...env, DSMIGRATE_TEST_PAUSE_AT: point, DSMIGRATE_TEST_PAUSE_FILE: file } };
}

/** Resolves once a paused run has written `file`; fails if the run ends first, or after `timeoutMs`. */
export async function waitForPause(file: string, run: Promise<CliResult>, timeoutMs = 90_000): Promise<void> {
  let ended: CliResult | undefined;
  void run.then((r) => (ended = r));
  for (const until = Date.now() + timeoutMs; !existsSync(file); await sleep(50)) {
    if (ended) throw new Error(`the run ended before it paused: ${ended.code}\n${ended.stdout}\n${ended.stderr}`);
    if (Date.now() > until) throw new Error(`no pause within ${timeoutMs} ms`);
  }
}
