/**
 * A one-shot child process holding one ModelFactory: argv[2] is a SchemaJob (JSON). It connects, says
 * `{"ready":true}`, waits for `job.startFile` to exist when given (so that several workers start at
 * once), runs the job's steps in order and writes one JSON line with the outcome, then exits. The
 * connection comes from the environment, and so does the test pause point (src/sharding/test-pause.ts).
 */
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Datastore } from '../../../src/datastore';
import { ModelFactory, type FieldInput } from '../../../src/dynamic';
import { isDsMigrateError } from '../../../src/errors';
import { LocalExecutor } from '../../../src/executors';
import type { RunEvent } from '../../../src/migrations';

/** A change computed from the latest definition, so that a retried update applies it to whatever is stored then. */
export interface SchemaChange {
  /** Rename a field (same id: the plan copies its data). */
  rename?: { from: string; to: string };
  /** Change a field's type (a lossless one runs a built-in converter). */
  retype?: { field: string; type: 'double' | 'json' };
}

export type WorkerStep =
  | { op: 'define'; name: string; kind: string; fields: FieldInput[] }
  | { op: 'update'; name: string; change: SchemaChange; autoApply?: boolean; retryConflicts?: boolean }
  | { op: 'apply'; name: string; version?: number };

export interface SchemaJob {
  namespace: string;
  control: string;
  batchSize: number;
  lockWaitMs: number;
  lockTtlMs: number;
  /** Shards run at once; 1 makes the pause point exact. */
  concurrency: number;
  startFile?: string;
  steps: WorkerStep[];
}

/** What a worker reports: each step's result, and the runner's events it saw (without progress). */
export interface SchemaOutcome {
  ok: boolean;
  error?: string;
  code?: string;
  results: { op: string; version?: number; attempts?: number; ran?: string[] }[];
  events: (Exclude<RunEvent, { type: 'progress' }> & { at: number })[];
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2]) as SchemaJob;
  const store = await Datastore.connect();
  const factory = new ModelFactory(store, {
    namespace: job.namespace,
    controlNamespace: job.control,
    stalenessMs: 0,
    schemaBatchSize: job.batchSize,
    lockWaitMs: job.lockWaitMs,
    lockTtlMs: job.lockTtlMs,
    executor: new LocalExecutor({ concurrency: job.concurrency }),
    updatedBy: `schema-worker-${process.pid}`,
  });
  const outcome: SchemaOutcome = { ok: true, results: [], events: [] };
  const onEvent = (event: RunEvent): void => {
    if (event.type !== 'progress') outcome.events.push({ ...event, at: Date.now() });
  };
  process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
  if (job.startFile) while (!existsSync(job.startFile)) await sleep(20);

  try {
    for (const step of job.steps) {
      switch (step.op) {
        case 'define':
          outcome.results.push({ op: step.op, version: (await factory.define({ name: step.name, kind: step.kind, fields: step.fields })).definition.version });
          break;
        case 'update':
          for (let attempts = 1; ; attempts++) {
            try {
              const { definition } = await factory.update(step.name, (d) => changed(d.fields, step.change), { autoApply: step.autoApply, onEvent });
              outcome.results.push({ op: step.op, version: definition.version, attempts });
              break;
            } catch (error) {
              if (!step.retryConflicts || !isDsMigrateError(error, 'CONFLICT')) throw error;
              await sleep(Math.random() * 50);
            }
          }
          break;
        case 'apply': {
          const ran = await factory.applyPendingSchema(step.name, { version: step.version, onEvent });
          outcome.results.push({ op: step.op, ran: ran.map((p) => `v${p.fromVersion}-v${p.toVersion}`) });
          break;
        }
      }
    }
  } catch (error) {
    Object.assign(outcome, { ok: false, error: String(error), code: isDsMigrateError(error) ? error.code : undefined });
  }
  process.stdout.write(`${JSON.stringify(outcome)}\n`);
  await store.close();
  process.exit(0);
}

function changed(fields: readonly FieldInput[], change: SchemaChange): { fields: FieldInput[] } {
  return {
    fields: fields.map((f) => {
      if (change.rename && f.name === change.rename.from) return { ...f, name: change.rename.to };
      if (change.retype && f.name === change.retype.field) return { ...f, type: change.retype.type };
      return f;
    }),
  };
}

main().catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`);
  process.exit(1);
});
