import type { Argv, CommandModule } from 'yargs';
import { Datastore } from '../../datastore';
import { describeStep, ModelFactory } from '../../dynamic';
import { DsMigrateError } from '../../errors';
import { resolveDispatchSettings } from '../../executors/cloud-tasks';
import { resolveConfig } from '../config';
import { jsonLine } from '../output';
import type { GlobalFlags } from '../flags';

interface SchemaFlags extends GlobalFlags {
  action: 'plan' | 'apply' | 'cleanup';
  model?: string;
  version?: number;
  'models-namespace': string;
  'older-than': string;
  'dry-run': boolean;
  executor: 'local' | 'cloud-tasks';
}

const DURATION = /^(\d+)(d|h|m|s)$/;
const UNIT_MS: Record<string, number> = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000 };

function durationMs(text: string): number {
  const match = DURATION.exec(text);
  if (!match) throw new DsMigrateError('BAD_INPUT', `--older-than ${JSON.stringify(text)} is not a duration such as 30d, 12h, 15m or 0s.`, { field: 'older-than' });
  return Number(match[1]) * UNIT_MS[match[2]];
}

/** `dsmigrate schema plan|apply|cleanup`: the schema migrations of models defined at run time (ModelFactory). */
export const schemaCommand: CommandModule<GlobalFlags, SchemaFlags> = {
  command: 'schema <action> [model]',
  describe: 'Schema migrations of runtime models: plan (list), apply <model> --version N (approve and run), cleanup (remove orphaned data)',
  builder: (y: Argv<GlobalFlags>) =>
    y
      // `--version N` names a definition version here, not the tool's.
      .version(false)
      .positional('action', { choices: ['plan', 'apply', 'cleanup'] as const, demandOption: true })
      .positional('model', { type: 'string', describe: 'The definition name' })
      .option('version', { type: 'number', describe: 'apply: approve and run the plan to this version (and every earlier one that may run)' })
      .option('models-namespace', { type: 'string', default: '', describe: "The namespace holding the definitions (the factory's namespace)" })
      .option('older-than', { type: 'string', default: '30d', describe: 'cleanup: only orphans older than this (30d, 12h, 0s)' })
      .option('dry-run', { type: 'boolean', default: false, describe: 'cleanup: list what would be removed, remove nothing' })
      .option('executor', {
        choices: ['local', 'cloud-tasks'] as const,
        default: 'local' as const,
        describe: 'apply, cleanup: run the shards in this process, or as Cloud Tasks on the worker (as migrate --executor; see docs/cloud-tasks.md)',
      }) as unknown as Argv<SchemaFlags>,
  handler: async (argv) => {
    const config = await resolveConfig(argv);
    const olderThanMs = argv.action === 'cleanup' ? durationMs(argv['older-than']) : 0;
    if (argv.action === 'apply' && (argv.model === undefined || argv.version === undefined)) {
      throw new DsMigrateError('BAD_INPUT', 'schema apply needs the model and the version: dsmigrate schema apply <model> --version N.');
    }
    // Checked before connecting: a Cloud Tasks run needs a queue and a worker URL.
    const cloudTasks =
      argv.executor === 'cloud-tasks' && argv.action !== 'plan'
        ? {
            settings: resolveDispatchSettings(config.cloudTasks),
            onWarning: (message: string) => (argv.json ? jsonLine({ event: 'warning', message }) : process.stderr.write(`warning: ${message}\n`)),
          }
        : undefined;
    const store = await Datastore.connect(config.store);
    try {
      const factory = new ModelFactory(store, { namespace: argv['models-namespace'], controlNamespace: config.controlNamespace, register: false, lockTtlMs: config.lockTtlMs, cloudTasks });
      if (argv.action === 'plan') {
        const migrations = (await factory.schemaMigrations(argv.model)).filter((m) => m.status !== 'applied');
        if (argv.json) return jsonLine(migrations);
        if (migrations.length === 0) process.stdout.write('No schema migration is waiting.\n');
        for (const m of migrations) {
          process.stdout.write(`${m.id} [${m.status}${m.plan.needsApproval && m.status === 'pending' ? ', needs approval' : ''}]\n`);
          for (const step of m.plan.steps) process.stdout.write(`     ${describeStep(step)}\n`);
          for (const orphan of m.plan.orphans) process.stdout.write(`     leaves ${orphan.type === 'kind' ? `kind ${orphan.kind}` : `${orphan.kind}.${orphan.property}`} orphaned until cleanup\n`);
        }
        return;
      }
      if (argv.action === 'apply') {
        // Approved only once every check passed: a refused apply leaves the plan as it was.
        const ran = await factory.applyPendingSchema(argv.model!, { version: argv.version, approve: true });
        if (argv.json) return jsonLine({ applied: ran.map((p) => ({ model: p.model, fromVersion: p.fromVersion, toVersion: p.toVersion })) });
        process.stdout.write(ran.length === 0 ? 'Nothing to run: the plans up to that version have run.\n' : ran.map((p) => `Applied ${p.model} v${p.fromVersion}→v${p.toVersion}.\n`).join(''));
        return;
      }
      const orphans = await factory.cleanupSchema({ olderThanMs, dryRun: argv['dry-run'] });
      if (argv.json) return jsonLine({ dryRun: argv['dry-run'], orphans });
      if (orphans.length === 0) process.stdout.write('Nothing to clean up.\n');
      for (const o of orphans) process.stdout.write(`${argv['dry-run'] ? 'Would remove' : 'Removed'} ${o.type === 'kind' ? `kind ${o.kind}` : `${o.kind}.${o.property}`} (orphaned ${o.since})\n`);
    } finally {
      await store.close();
    }
  },
};
