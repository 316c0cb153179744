import { createServer, type AddressInfo } from 'node:net';
import type { Datastore } from '../../src/datastore';
import { resolveWorkerSettings, type TasksApi, type WorkerSettings } from '../../src/executors/cloud-tasks';
import { buildGraph } from '../../src/migrations';
import { startWorker } from '../../src/worker';
import { runCli, tempApp } from '../support/cli';
import { INCREMENT_MIGRATION, SECRET, singleFlavour } from './support/harness';

const HMAC: WorkerSettings = { auth: { kind: 'hmac', secret: SECRET, maxAgeMs: 60_000 } };
const OIDC: WorkerSettings = { auth: { kind: 'oidc', audience: 'https://worker.example/', allowedServiceAccounts: ['tasks@p.iam.gserviceaccount.com'] } };

describe('where the worker listens', () => {
  // Nothing is served here: the store and the Cloud Tasks client are never called.
  const unused = { store: {} as Datastore, graph: buildGraph([]), tasks: {} as TasksApi };

  test.each([
    ['a shared secret (the emulator’s): the loopback interface only', HMAC, undefined, '127.0.0.1'],
    ['OIDC tokens: every interface', OIDC, undefined, '0.0.0.0'],
    ['a shared secret, and a host given', HMAC, '0.0.0.0', '0.0.0.0'],
    ['OIDC tokens, and a host given', OIDC, '127.0.0.1', '127.0.0.1'],
  ])('%s', async (_, settings, host, expected) => {
    const worker = await startWorker({ ...unused, settings, host });
    try {
      expect((worker.server.address() as AddressInfo).address).toBe(expected);
    } finally {
      await worker.stop(1_000);
    }
  });
});

describe('a shared secret and OIDC settings both given', () => {
  test.each([
    [{ serviceAccountEmail: 'tasks@p.iam.gserviceaccount.com' }, {}, 'DSMIGRATE_TASKS_SERVICE_ACCOUNT or cloudTasks.serviceAccountEmail'],
    [{}, { DSMIGRATE_TASKS_SERVICE_ACCOUNT: 'tasks@p.iam.gserviceaccount.com' }, 'DSMIGRATE_TASKS_SERVICE_ACCOUNT or cloudTasks.serviceAccountEmail'],
    [{}, { DSMIGRATE_TASKS_AUDIENCE: 'https://worker.example/' }, 'DSMIGRATE_TASKS_AUDIENCE or cloudTasks.audience'],
    [{ allowedServiceAccounts: ['tasks@p.iam.gserviceaccount.com'] }, {}, 'cloudTasks.allowedServiceAccounts'],
  ])('are refused, naming both (%j, %j)', (config, env, named) => {
    expect(() => resolveWorkerSettings(config, { ...env, DSMIGRATE_WORKER_SECRET: SECRET })).toThrow(
      expect.objectContaining({ code: 'BAD_INPUT', message: expect.stringMatching(new RegExp(`DSMIGRATE_WORKER_SECRET.*${named.replace(/\./g, '\\.')}`)) }),
    );
  });

  test('the worker URL alone is no OIDC setting: the CLI needs it with the emulator too', () => {
    expect(resolveWorkerSettings({ workerUrl: 'http://127.0.0.1:8080/' }, { DSMIGRATE_WORKER_SECRET: SECRET }).auth.kind).toBe('hmac');
  });
});

describe('dsmigrate worker', () => {
  const ctx = singleFlavour('firestore', 'listen');
  const app = tempApp({ 'migrations/0001_increment.ts': INCREMENT_MIGRATION() });

  test('with a shared secret listens on 127.0.0.1 unless --host says otherwise', async () => {
    for (const [flags, host] of [
      [[], '127.0.0.1'],
      [['--host', '0.0.0.0'], '0.0.0.0'],
    ] as const) {
      let kill = (): void => undefined;
      let listening: Record<string, unknown> | undefined;
      await runCli(['worker', '--json', '--port', '0', ...flags], {
        cwd: app,
        env: { ...ctx.env(), DSMIGRATE_WORKER_SECRET: SECRET },
        onSpawn: (k) => (kill = k),
        signal: 'SIGTERM',
        onLine: (line) => {
          listening = JSON.parse(line) as Record<string, unknown>;
          kill();
        },
      });
      expect(listening).toMatchObject({ event: 'listening', host, auth: 'hmac' });
    }
  });

  test('with a shared secret and OIDC settings exits 2, naming both', async () => {
    const result = await runCli(['worker', '--port', '0'], {
      cwd: app,
      env: { ...ctx.env(), DSMIGRATE_WORKER_SECRET: SECRET, DSMIGRATE_TASKS_SERVICE_ACCOUNT: 'tasks@p.iam.gserviceaccount.com' },
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/DSMIGRATE_WORKER_SECRET.*DSMIGRATE_TASKS_SERVICE_ACCOUNT or cloudTasks\.serviceAccountEmail/);
  });

  test('exits 2 with one line naming --port or --host when it cannot listen there', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const busy = (taken.address() as AddressInfo).port;
    try {
      for (const [flags, message] of [
        [['--port', 'abc'], '--port takes a port number (0 to 65535; 0 picks a free one), not "abc".'],
        [['--port', '70000'], '--port takes a port number (0 to 65535; 0 picks a free one), not "70000".'],
        [['--port', String(busy)], `--port ${busy} is in use: choose another, or 0 for a free one.`],
        [['--port', '0', '--host', '999.1.1.1'], "--host 999.1.1.1 is not an address of this machine: give one of its interfaces' addresses (0.0.0.0 for all, 127.0.0.1 for this machine alone)."],
      ] as const) {
        const result = await runCli(['worker', ...flags], { cwd: app, env: { ...ctx.env(), DSMIGRATE_WORKER_SECRET: SECRET } });
        expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 2, stderr: `dsmigrate: ${message}\n` });
      }
    } finally {
      taken.close();
    }
  });
});
