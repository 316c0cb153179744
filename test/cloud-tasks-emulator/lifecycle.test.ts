import { spawn } from 'node:child_process';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { tasksClientFor } from '../../emulator/cloud-tasks';
import { codeOf, seconds, startHarness, uniqueParent } from './support/harness';

test('stop() aborts requests in flight, cancels timers, rejects idle waiters and closes the gRPC server', async () => {
  const h = await startHarness();
  const parent = uniqueParent();
  const queue = `${parent}/queues/q`;
  await h.client.createQueue({ parent, queue: { name: queue } });
  h.target.respondWith(async (r) => {
    await r.abandoned; // never answers: only the emulator hanging up ends it
    return 200;
  });
  // One task far in the future (an armed timer) and one stuck in its handler.
  await h.client.createTask({ parent: queue, task: { scheduleTime: seconds(Date.now() / 1000 + 3600), httpRequest: { url: h.target.url() } } });
  await h.client.createTask({ parent: queue, task: { httpRequest: { url: h.target.url('/stuck') } } });
  const [stuck] = await h.target.waitForRequests(1);
  const idle = h.emulator.idle();

  await h.emulator.stop();
  await expect(idle).rejects.toThrow('stopped');
  await stuck?.abandoned;
  expect(await codeOf(h.client.createQueue({ parent, queue: { name: `${parent}/queues/after` } }))).toBe(status.UNAVAILABLE);
  await h.emulator.stop(); // idempotent
  await h.close();
});

test('reset() forgets queues, tasks, tombstones and counters', async () => {
  const h = await startHarness();
  try {
    const parent = uniqueParent();
    const queue = `${parent}/queues/q`;
    const name = `${queue}/tasks/kept-name`;
    await h.client.createQueue({ parent, queue: { name: queue } });
    await h.client.createTask({ parent: queue, task: { name, httpRequest: { url: h.target.url() } } });
    await h.emulator.idle();
    expect(h.emulator.stats().successes).toBe(1);

    h.emulator.reset();
    expect(h.emulator.stats().successes).toBe(0);
    expect(await codeOf(h.client.getQueue({ name: queue }))).toBe(status.NOT_FOUND);
    await h.client.createQueue({ parent, queue: { name: queue } });
    await h.client.createTask({ parent: queue, task: { name, httpRequest: { url: h.target.url() } } });
    await h.emulator.idle();
  } finally {
    await h.close();
  }
});

test('npm run emulator -- --no-datastore prints CLOUD_TASKS_EMULATOR_HOST, serves the API and exits cleanly on SIGTERM', async () => {
  const root = path.resolve(__dirname, '..', '..');
  const child = spawn(path.join(root, 'node_modules', '.bin', 'tsx'), ['src/cli/main.ts', 'emulator', '--no-datastore'], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    const host = await new Promise<string>((resolve, reject) => {
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        const match = /^export CLOUD_TASKS_EMULATOR_HOST=(\S+)$/m.exec(output);
        if (match?.[1]) resolve(match[1]);
      });
      child.on('exit', (code) => reject(new Error(`CLI exited early with ${code}: ${output}`)));
    });
    expect(host).toMatch(/^127\.0\.0\.1:\d+$/);

    const client = tasksClientFor(host);
    const parent = uniqueParent();
    await client.createQueue({ parent, queue: { name: `${parent}/queues/from-cli` } });
    const [queues] = await client.listQueues({ parent });
    expect(queues.map((q) => q.name)).toEqual([`${parent}/queues/from-cli`]);
    await client.close();
  } finally {
    child.kill('SIGTERM');
  }
  expect(await exited).toBe(0);
});
