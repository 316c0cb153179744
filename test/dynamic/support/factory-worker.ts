/**
 * A child process holding one ModelFactory, driven by JSON lines on stdin (one request per line) and
 * answering with JSON lines on stdout. Argv: namespace, stalenessMs. Connection from the environment.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { createInterface } from 'node:readline';
import { Datastore } from '../../../src/datastore';
import { ModelFactory, type DefinitionInput } from '../../../src/dynamic';
import { isDsMigrateError } from '../../../src/errors';

export type WorkerRequest =
  | { id: number; op: 'define'; definition: DefinitionInput }
  | { id: number; op: 'get'; name: string }
  | { id: number; op: 'addFields'; name: string; prefix: string; count: number }
  | { id: number; op: 'events'; name: string };

export interface GetResult {
  fields: string[];
  version: number;
  hash: string;
  lookups: number;
}

export interface AddFieldResult {
  field: string;
  version: number;
  attempts: number;
}

async function main(): Promise<void> {
  const [namespace, staleness] = process.argv.slice(2);
  let lookups = 0;
  const store = await Datastore.connect({ onRpc: (e) => (e.method === 'lookup' ? lookups++ : undefined) });
  const factory = new ModelFactory(store, { namespace, stalenessMs: Number(staleness), updatedBy: `worker-${process.pid}` });
  const seen: { name: string; version: number }[] = [];
  factory.on('definitionChanged', (e) => seen.push({ name: e.name, version: e.current.version }));

  /** One updater: add a field, reading again and retrying for as long as another writer got there first. */
  async function addField(name: string, field: string): Promise<AddFieldResult> {
    for (let attempts = 1; ; attempts++) {
      try {
        const { definition } = await factory.update(name, (d) => ({ fields: [...d.fields, { name: field, type: 'string', nullable: true }] }));
        return { field, version: definition.version, attempts };
      } catch (error) {
        if (!isDsMigrateError(error, 'CONFLICT')) throw error;
        await sleep(Math.random() * 20);
      }
    }
  }

  async function handle(request: WorkerRequest): Promise<unknown> {
    switch (request.op) {
      case 'define':
        return (await factory.define(request.definition)).definition.version;
      case 'get': {
        const before = lookups;
        const model = await factory.get(request.name);
        const definition = await factory.getDefinition(request.name);
        return { fields: Object.keys(model.fields), version: definition.version, hash: definition.hash, lookups: lookups - before } satisfies GetResult;
      }
      case 'addFields':
        return Promise.all(Array.from({ length: request.count }, (_, i) => addField(request.name, `${request.prefix}${i}`)));
      case 'events':
        return seen.filter((e) => e.name === request.name).map((e) => e.version);
    }
  }

  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const request = JSON.parse(line) as WorkerRequest;
    handle(request).then(
      (result) => process.stdout.write(`${JSON.stringify({ id: request.id, ok: true, result })}\n`),
      (error: unknown) => process.stdout.write(`${JSON.stringify({ id: request.id, ok: false, error: String(error), code: isDsMigrateError(error) ? error.code : undefined })}\n`),
    );
  });
  lines.on('close', () => void store.close().then(() => process.exit(0)));
  process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`);
  process.exit(1);
});
