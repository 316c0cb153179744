import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SchemaJob, SchemaOutcome } from './schema-worker';

const WORKER = path.join(__dirname, 'schema-worker.ts');

export interface SchemaWorkerExit {
  /** The worker's one answer; undefined when it was killed first. */
  outcome?: SchemaOutcome;
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** A running schema worker: connected once `ready` resolves, finished once `done` does. */
export interface SchemaWorker {
  ready: Promise<void>;
  done: Promise<SchemaWorkerExit>;
  kill(): void;
}

export function startSchemaWorker(env: NodeJS.ProcessEnv, job: SchemaJob): SchemaWorker {
  const child = spawn(process.execPath, ['-r', 'tsx/cjs', WORKER, JSON.stringify(job)], { env, cwd: path.join(__dirname, '../../..') });
  let stderr = '';
  let outcome: SchemaOutcome | undefined;
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  createInterface({ input: child.stdout }).on('line', (line) => {
    const message = JSON.parse(line) as { ready?: true } & SchemaOutcome;
    if (message.ready) markReady();
    else outcome = message;
  });
  const done = new Promise<SchemaWorkerExit>((resolve) => child.once('close', (code, signal) => resolve({ outcome, code, signal, stderr })));
  const failedEarly = done.then((exit) => {
    throw new Error(`schema worker exited before it was ready: ${exit.code ?? exit.signal}\n${exit.stderr}`);
  });
  return {
    ready: Promise.race([ready, failedEarly]),
    done,
    kill: () => void child.kill('SIGKILL'),
  };
}

/** A fresh path for a pause or start file (not created). */
export function tempFile(name: string): string {
  return path.join(mkdtempSync(path.join(tmpdir(), 'dsm-schema-')), name);
}

/** The environment that pauses a worker after `batches` committed batches, until `file` is removed. */
export { pausing } from '../../support/cli';

/** Resolves once `file` exists; fails when the worker ends first, or after `timeoutMs`. */
export async function waitForFile(file: string, worker: SchemaWorker, timeoutMs = 120_000): Promise<void> {
  let ended: SchemaWorkerExit | undefined;
  void worker.done.then((e) => (ended = e));
  for (const until = Date.now() + timeoutMs; !existsSync(file); await sleep(50)) {
    if (ended) throw new Error(`the worker ended before ${file} appeared: ${ended.code ?? ended.signal}\n${JSON.stringify(ended.outcome)}\n${ended.stderr}`);
    if (Date.now() > until) throw new Error(`${file} did not appear within ${timeoutMs} ms`);
  }
}
