import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { WorkerRequest } from './factory-worker';

type Pending = { resolve: (value: unknown) => void; reject: (error: Error) => void };
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

const WORKER = path.join(__dirname, 'factory-worker.ts');

/** The parent's end of a factory worker: request in, promise of the answer out. */
export class WorkerClient {
  private nextId = 0;
  private readonly pending = new Map<number, Pending>();
  private stderr = '';

  private constructor(private readonly child: ChildProcessWithoutNullStreams) {}

  static start(env: NodeJS.ProcessEnv, namespace: string, stalenessMs: number): Promise<WorkerClient> {
    const child = spawn(process.execPath, ['-r', 'tsx/cjs', WORKER, namespace, String(stalenessMs)], { env, cwd: path.join(__dirname, '../../..') });
    const client = new WorkerClient(child);
    child.stderr.on('data', (chunk: Buffer) => (client.stderr += chunk.toString()));
    return new Promise((resolve, reject) => {
      child.once('exit', (code) => {
        const error = new Error(`factory worker exited with ${code}: ${client.stderr}`);
        reject(error);
        for (const p of client.pending.values()) p.reject(error);
      });
      createInterface({ input: child.stdout }).on('line', (line) => {
        const message = JSON.parse(line) as { ready?: true; id: number; ok: boolean; result?: unknown; error?: string; code?: string };
        if (message.ready) return resolve(client);
        const pending = client.pending.get(message.id)!;
        client.pending.delete(message.id);
        if (message.ok) pending.resolve(message.result);
        else pending.reject(Object.assign(new Error(message.error), { code: message.code }));
      });
    });
  }

  call<T>(request: WithoutId<WorkerRequest>): Promise<T> {
    const id = ++this.nextId;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.child.stdin.write(`${JSON.stringify({ ...request, id })}\n`);
    });
  }

  /** Closes stdin; the worker closes its connection and exits. */
  stop(): Promise<void> {
    if (this.child.exitCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.stdin.end();
    });
  }
}
