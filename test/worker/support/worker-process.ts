import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';

const CLI = path.resolve(__dirname, '../../../src/cli/main.ts');

export interface WorkerProcess {
  readonly child: ChildProcess;
  output(): string;
  /** SIGKILL: no chance to finish anything, as when a machine dies. */
  kill(): Promise<void>;
  /** SIGTERM: a graceful stop, as Cloud Run does it. */
  stop(): Promise<number | null>;
}

/** A port nothing listens on right now. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** `dsmigrate worker --port` as a real child process; resolves once it listens. */
export function spawnWorker(options: { cwd: string; env: NodeJS.ProcessEnv; port: number }): Promise<WorkerProcess> {
  const child = spawn(process.execPath, ['--require', require.resolve('tsx/cjs'), CLI, 'worker', '--port', String(options.port), '--host', '127.0.0.1'], {
    cwd: options.cwd,
    env: { ...options.env, FORCE_COLOR: '0' },
  });
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const handle: WorkerProcess = {
    child,
    output: () => output,
    kill: async () => {
      child.kill('SIGKILL');
      await exited;
    },
    stop: async () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker did not start:\n${output}`)), 30_000);
    const onData = (d: Buffer) => {
      output += d.toString();
      if (output.includes('listening on port')) {
        clearTimeout(timer);
        resolve(handle);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`worker exited with ${code}:\n${output}`));
    });
  });
}
