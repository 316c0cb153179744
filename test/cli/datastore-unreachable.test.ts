import { runCli, tempApp } from '../support/cli';
import { startProxy } from '../support/datastore-proxy';
import { emulatorHosts, uniqueProject } from '../support/emulators';

/**
 * A Datastore that stops answering, as a user meets it outside a migration's run: every query is answered
 * UNAVAILABLE (the proxy in front of the emulator), so `status` gives up after its retries. The user reads
 * what failed and what to check, not a stack trace.
 */
const hosts = emulatorHosts();
const host = hosts.firestore ?? Object.values(hosts)[0]!;

describe('a Datastore that does not answer', () => {
  it('is named with its gRPC status and what to check, exit 1, with --json too', async () => {
    const proxy = await startProxy(host, { faultFraction: 1, faultShares: { unavailable: 1 }, faultMethods: ['RunQuery'] });
    try {
      const projectId = uniqueProject('unreachable');
      const env = { ...process.env, DATASTORE_EMULATOR_HOST: proxy.host, DATASTORE_PROJECT_ID: projectId, GOOGLE_CLOUD_PROJECT: projectId };
      const app = tempApp({ 'migrations/.keep': '' });

      const text = await runCli(['status'], { cwd: app, env });
      expect(text.code).toBe(1);
      expect(text.stderr).toMatch(/^dsmigrate: A call to Datastore failed: 14 UNAVAILABLE/);
      expect(text.stderr).toMatch(/Datastore did not answer, after retries: check this machine's network \(or, for an emulator, that it still runs at DATASTORE_EMULATOR_HOST\)/);
      expect(text.stderr).not.toMatch(/^\s+at /m);

      const json = await runCli(['status', '--json'], { cwd: app, env });
      expect(json.code).toBe(1);
      const line = JSON.parse(json.stdout.trim().split('\n').pop()!) as { error: string; code: string; context: { grpcCode: number }; advice: string };
      expect(line).toMatchObject({ code: 'DATASTORE', context: { grpcCode: 14 }, advice: expect.stringMatching(/^Datastore did not answer/) });
      expect(line.error).toMatch(/^A call to Datastore failed: 14 UNAVAILABLE/);
    } finally {
      await proxy.stop();
    }
  });
});
