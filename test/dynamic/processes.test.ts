import { setTimeout as sleep } from 'node:timers/promises';
import { Key } from '../../src/datastore';
import { DEFINITION_KIND, definitionHash, normalizeDefinition, type FieldInput } from '../../src/dynamic';
import { describeEachFlavour } from '../support/emulators';
import type { AddFieldResult, GetResult } from './support/factory-worker';
import { WorkerClient } from './support/worker-client';

const PROCESSES = 4;
const UPDATERS_PER_PROCESS = 5;
const STALENESS_MS = 250;

describeEachFlavour('ModelFactory across processes', (ctx) => {
  const namespace = 'processes';
  let workers: WorkerClient[] = [];

  beforeAll(async () => {
    workers = await Promise.all(Array.from({ length: PROCESSES }, () => WorkerClient.start(ctx.env(), namespace, STALENESS_MS)));
  });
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop()));
  });

  it('propagates an update to every other process by its next get after the bound', async () => {
    const [writer, ...readers] = workers;
    await writer.call({ op: 'define', definition: { name: 'Form', fields: [{ name: 'question', type: 'string', default: '' }] } });
    for (const r of await Promise.all(readers.map((r) => r.call<GetResult>({ op: 'get', name: 'Form' })))) {
      expect(r).toMatchObject({ version: 1, fields: ['question'] });
    }

    await writer.call({ op: 'addFields', name: 'Form', prefix: 'answer', count: 1 });
    await sleep(STALENESS_MS);
    const seen = await Promise.all(readers.map((r) => r.call<GetResult>({ op: 'get', name: 'Form' })));
    for (const r of seen) expect(r).toEqual({ version: 2, fields: ['question', 'answer0'], hash: seen[0].hash, lookups: 1 });
  });

  it('loses no update among 20 concurrent updaters in 4 processes, and versions strictly increase', async () => {
    const initial: FieldInput[] = [{ name: 'base', type: 'string', nullable: true }];
    await workers[0].call({ op: 'define', definition: { name: 'Contended', fields: initial } });
    const results = (await Promise.all(workers.map((w, p) => w.call<AddFieldResult[]>({ op: 'addFields', name: 'Contended', prefix: `p${p}u`, count: UPDATERS_PER_PROCESS })))).flat();

    // Every update committed exactly one version, each the next: a strict, gapless sequence 2..21.
    const total = PROCESSES * UPDATERS_PER_PROCESS;
    expect(results).toHaveLength(total);
    expect(results.map((r) => r.version).sort((a, b) => a - b)).toEqual(Array.from({ length: total }, (_, i) => i + 2));
    expect(results.some((r) => r.attempts > 1)).toBe(true); // they really did contend

    const store = await ctx.connect();
    const raw = (await store.get(Key.of(DEFINITION_KIND, 'Contended', { namespace })))!;
    const fields = JSON.parse(raw.get('fields') as string) as FieldInput[];
    expect(raw.get('version')).toBe(total + 1);
    expect(fields.map((f) => f.name).sort()).toEqual(['base', ...results.map((r) => r.field)].sort());
    expect(raw.get('hash')).toBe(definitionHash(normalizeDefinition({ name: 'Contended', fields }).shape));

    // Every process sees the final definition after the bound, and saw versions only move forward.
    await sleep(STALENESS_MS);
    for (const worker of workers) {
      expect(await worker.call<GetResult>({ op: 'get', name: 'Contended' })).toMatchObject({ version: total + 1, hash: raw.get('hash') });
    }
    for (const versions of await Promise.all(workers.map((w) => w.call<number[]>({ op: 'events', name: 'Contended' })))) {
      expect(versions.every((v, i) => i === 0 || v > versions[i - 1])).toBe(true);
    }
  });
});
