import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const REPO = path.resolve(__dirname, '..', '..');
const CLI = path.join(REPO, 'src', 'cli', 'main.ts');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `dsmigrate` from source as a separate process, exactly as a user's shell would. */
export function runCli(args: string[], options: { cwd: string; env: NodeJS.ProcessEnv; onSpawn?: (kill: () => void) => void }): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--require', require.resolve('tsx/cjs'), CLI, ...args], { cwd: options.cwd, env: { ...options.env, FORCE_COLOR: '0' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    options.onSpawn?.(() => child.kill('SIGKILL'));
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
