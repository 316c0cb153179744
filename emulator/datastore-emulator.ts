import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';

/** `firestore`: Firestore in Datastore mode (what new projects get). `classic`: the legacy Datastore emulator. */
export type EmulatorFlavour = 'firestore' | 'classic';
export const EMULATOR_FLAVOURS: readonly EmulatorFlavour[] = ['firestore', 'classic'];

export interface RunningEmulator {
  flavour: EmulatorFlavour;
  /** `host:port`, the value for DATASTORE_EMULATOR_HOST. */
  host: string;
  port: number;
  stop(): Promise<void>;
}

export interface StartOptions {
  flavour?: EmulatorFlavour;
  port?: number;
  /** Milliseconds to wait for the health check. */
  timeoutMs?: number;
  /** Forward the emulator's own output, to stderr: stdout stays for what `dsmigrate emulator` prints (its --json line). */
  verbose?: boolean;
}

export class EmulatorSetupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EmulatorSetupError';
  }
}

/** The port asked for is taken: the emulator would fail to bind it, while its health check found whatever answers there. */
export class EmulatorPortInUseError extends EmulatorSetupError {
  constructor(readonly port: number) {
    super(`Port ${port} is in use.`);
    this.name = 'EmulatorPortInUseError';
  }
}

const LAUNCHERS: Record<EmulatorFlavour, { dir: string; script: string; component: string; args: (port: number) => string[] }> = {
  firestore: {
    dir: 'cloud-firestore-emulator',
    script: 'cloud_firestore_emulator',
    component: 'cloud-firestore-emulator',
    args: (port) => ['--database-mode=datastore-mode', '--host=127.0.0.1', `--port=${port}`],
  },
  classic: {
    dir: 'cloud-datastore-emulator',
    script: 'cloud_datastore_emulator',
    component: 'cloud-datastore-emulator',
    // --testing: in memory, and consistency 1.0 so that tests see their own writes in queries.
    args: (port) => ['start', '--testing', '--host=127.0.0.1', `--port=${port}`],
  },
};

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

function sdkRoot(): string {
  if (process.env.CLOUDSDK_ROOT_DIR) return process.env.CLOUDSDK_ROOT_DIR;
  const which = spawnSync('gcloud', ['info', '--format=value(installation.sdk_root)'], { encoding: 'utf8' });
  if (which.error || which.status !== 0 || !which.stdout.trim()) {
    throw new EmulatorSetupError(
      'gcloud was not found. Install the Google Cloud CLI (https://cloud.google.com/sdk/docs/install, or the Debian package google-cloud-cli) ' +
        'or set CLOUDSDK_ROOT_DIR to its installation directory.',
    );
  }
  return which.stdout.trim();
}

/** Finds the launcher script and checks that Java is there, with an error that says what to install. */
export function locateEmulator(flavour: EmulatorFlavour): string {
  const launcher = LAUNCHERS[flavour];
  const script = path.join(sdkRoot(), 'platform', launcher.dir, launcher.script);
  if (!existsSync(script)) {
    throw new EmulatorSetupError(
      `The ${flavour} Datastore emulator is not installed (${script} is missing). ` +
        `Install it with: gcloud components install ${launcher.component} (or the Debian package google-cloud-cli-${launcher.component}).`,
    );
  }
  const java = spawnSync(process.env.JAVA ?? 'java', ['-version'], { encoding: 'utf8' });
  if (java.error || java.status !== 0) {
    throw new EmulatorSetupError('Java was not found; the Datastore emulators need Java 11 or later. Install it with: apt-get install openjdk-17-jre-headless');
  }
  return script;
}

async function portTaken(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'EADDRINUSE'));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(false)));
  });
}

async function healthy(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(1000) });
    return res.ok && (await res.text()).trim() === 'Ok';
  } catch {
    return false;
  }
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null) return;
  try {
    // The launcher is a shell script that starts java: kill the whole process group.
    process.kill(-child.pid, signal);
  } catch {
    child.kill(signal);
  }
}

const running = new Set<ChildProcess>();
let exitHooksInstalled = false;

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.on('exit', () => running.forEach((child) => killGroup(child, 'SIGKILL')));
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      running.forEach((child) => killGroup(child, 'SIGKILL'));
      // Leave the exit to the program's own handler; with none, die of the signal as usual.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

export async function startDatastoreEmulator(options: StartOptions = {}): Promise<RunningEmulator> {
  const flavour = options.flavour ?? 'firestore';
  const script = locateEmulator(flavour);
  if (options.port !== undefined && options.port !== 0 && (await portTaken(options.port))) throw new EmulatorPortInUseError(options.port);
  const port = options.port || (await freePort());
  const child = spawn(script, LAUNCHERS[flavour].args(port), {
    detached: true,
    stdio: ['ignore', options.verbose ? process.stderr.fd : 'pipe', options.verbose ? process.stderr.fd : 'pipe'],
    env: { ...process.env, JAVA_TOOL_OPTIONS: process.env.JAVA_TOOL_OPTIONS ?? '-Xss4m' },
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  child.stderr?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  running.add(child);
  installExitHooks();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', () => running.delete(child));

  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  while (!(await healthy(port))) {
    if (child.exitCode !== null) {
      throw new EmulatorSetupError(`The ${flavour} emulator exited with code ${child.exitCode} before it was ready:\n${output}`);
    }
    if (Date.now() > deadline) {
      killGroup(child, 'SIGKILL');
      throw new EmulatorSetupError(`The ${flavour} emulator did not answer on port ${port} within ${options.timeoutMs ?? 60_000} ms:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  return {
    flavour,
    port,
    host: `127.0.0.1:${port}`,
    async stop() {
      killGroup(child, 'SIGTERM');
      const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
