import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Datastore } from '../../src/datastore';
import type { DatastoreProxyReport } from '../../emulator/datastore-proxy';
import { REPO, runCli } from '../support/cli';
import { uniqueProject } from '../support/emulators';

/**
 * `dsmigrate emulator` with the Datastore proxy, from source; it starts an emulator of its own (the
 * Firestore-mode one). Through tsx's own bin, as `npm run emulator` does: the command loads the emulators
 * with import(), which runCli's CommonJS-only hook (tsx/cjs) cannot resolve in TypeScript sources.
 */
test('dsmigrate emulator --datastore-fault-fraction --json prints the environment, and the proxy counts on SIGTERM', async () => {
  const args = ['src/cli/main.ts', 'emulator', '--no-tasks', '--datastore-fault-fraction', '0.5', '--datastore-fault-codes', 'aborted=1,unavailable=1', '--seed', '5', '--json'];
  const child = spawn(path.join(REPO, 'node_modules', '.bin', 'tsx'), args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DATASTORE_EMULATOR_HOST: '' } });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    const env = await new Promise<Record<string, string>>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        if (stdout.includes('\n')) resolve(JSON.parse(stdout.split('\n')[0]) as Record<string, string>);
      });
      void exited.then((code) => reject(new Error(`exited early with ${code}:\n${stdout}\n${stderr}`)));
    });
    expect(env.DATASTORE_EMULATOR_HOST).toMatch(/^127\.0\.0\.1:\d+$/);

    const store = await Datastore.connect({ emulatorHost: env.DATASTORE_EMULATOR_HOST, projectId: uniqueProject('cli'), retry: { attempts: 1 } });
    let failed = 0;
    for (let i = 0; i < 20; i++) await store.lookup([store.key('Cli', 'x')]).catch(() => failed++);
    await store.close();
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    const { counts } = (JSON.parse(lines[1]) as { datastoreProxy: DatastoreProxyReport }).datastoreProxy;
    expect(counts.rpcs.Lookup).toBe(20);
    expect(counts.totalInjected).toBe(failed);
    expect(Object.keys(counts.injected.Lookup ?? {}).sort()).toEqual(['aborted', 'unavailable']);
  } finally {
    child.kill('SIGKILL');
  }
});

test('dsmigrate emulator refuses an unknown fault code, naming it, before starting anything', async () => {
  const result = await runCli(['emulator', '--datastore-fault-codes', 'aborted=1,conflict=2'], { cwd: tmpdir(), env: process.env });
  expect(result.code).toBe(2);
  expect(result.stderr).toMatch(/--datastore-fault-codes: unknown fault code "conflict"; the codes are aborted, unavailable/);
});

test('dsmigrate emulator refuses a --port in use, naming it, rather than reporting whatever answers there as its emulator', async () => {
  // Another emulator on the port, as far as a health check can tell.
  const other = createServer((_request, response) => response.end('Ok\n'));
  await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
  const { port } = other.address() as AddressInfo;
  try {
    const child = spawn(path.join(REPO, 'node_modules', '.bin', 'tsx'), ['src/cli/main.ts', 'emulator', '--no-tasks', '--port', String(port)], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect({ code, stdout, stderr }).toEqual({ code: 2, stdout: '', stderr: `dsmigrate: --port ${port} is in use: choose another, or 0 for a free one.\n` });
  } finally {
    other.close();
  }
});
