import type { Argv, CommandModule } from 'yargs';
import { Datastore, describeKind, listKinds, type KindShape } from '../../datastore';
import { compareWithModels, ModelFactory, runtimeModels, type DescribedModel, type StoredVersusModels } from '../../dynamic';
import { DsMigrateError } from '../../errors';
import { loadModels } from '../../model';
import { modelModules, resolveConfig, type ResolvedConfig } from '../config';
import { jsonLine, table } from '../output';
import type { GlobalFlags } from '../flags';

interface IntrospectFlags extends GlobalFlags {
  kinds?: string[];
  namespace: string;
  sample: number;
  models?: string[];
  'models-namespace'?: string;
}

export const introspectCommand: CommandModule<GlobalFlags, IntrospectFlags> = {
  command: 'introspect [kinds..]',
  describe: "Show kinds' stored properties: types, index settings and how often each is present; with models, compare them with what is stored",
  builder: (y) =>
    y
      .positional('kinds', { type: 'string', array: true, describe: 'Kinds to describe (default: all, where the backend lists kinds); with models, kinds to check besides theirs' })
      .option('namespace', { type: 'string', default: '', describe: 'Namespace to look in' })
      .option('sample', { type: 'number', default: 500, describe: 'Entities to read per kind' })
      .option('models', { type: 'string', array: true, nargs: 1, requiresArg: true, describe: 'Modules or directories defining the models to compare with (default: models in the config file)' })
      .option('models-namespace', {
        type: 'string',
        describe: "Compare with the runtime definitions held in this namespace (the factory's namespace); implied '' when models are given",
      }) as unknown as Argv<IntrospectFlags>,
  handler: async (argv) => {
    if (!Number.isInteger(argv.sample) || argv.sample < 1) throw new DsMigrateError('BAD_INPUT', `--sample must be a whole number of at least 1, not ${argv.sample}.`, { flag: '--sample' });
    const config = await resolveConfig(argv);
    const modelPaths = await modelModules(argv);
    const store = await Datastore.connect(config.store);
    try {
      if (modelPaths.length > 0 || argv['models-namespace'] !== undefined) await compare(store, config, argv, modelPaths);
      else await describeKinds(store, argv);
    } finally {
      await store.close();
    }
  },
};

/** `--models`, else the config file's `models` (relative to the file), as `dsmigrate indexes` reads them. */
async function describeKinds(store: Datastore, argv: IntrospectFlags): Promise<void> {
  const kinds = argv.kinds?.length ? argv.kinds : await listKinds(store, argv.namespace);
  if (!kinds) throw new DsMigrateError('BAD_INPUT', 'This backend does not list kinds (the Firestore-mode emulator answers no metadata queries): name them, e.g. dsmigrate introspect Person.');
  const shapes: KindShape[] = [];
  for (const kind of kinds) shapes.push(await describeKind(store, kind, argv.namespace, argv.sample));
  if (argv.json) return jsonLine(shapes);
  for (const shape of shapes) {
    process.stdout.write(`\n${shape.kind}${shape.namespace ? ` [${shape.namespace}]` : ''}: ${shape.sampled} entities sampled\n`);
    if (shape.sampled === 0) continue;
    const rows = shape.properties.map((p) => [
      p.name,
      Object.entries(p.types)
        .map(([t, n]) => (n === p.present ? t : `${t} ${n}`))
        .join(', '),
      `${Math.round((100 * p.present) / shape.sampled)}%`,
      p.unindexed === 0 ? 'yes' : p.indexed === 0 ? 'no' : `${p.indexed} of ${p.present}`,
    ]);
    process.stdout.write(`${table(['PROPERTY', 'TYPE', 'PRESENT', 'INDEXED'], rows)}\n`);
  }
}

async function compare(store: Datastore, config: ResolvedConfig, argv: IntrospectFlags, modelPaths: readonly string[]): Promise<void> {
  const defined: DescribedModel[] = loadModels(modelPaths).map((model) => ({ name: model.kind, origin: 'defineModel', model }));
  // register: false keeps the runtime models out of the registry, where they would shadow the app's defineModel ones.
  const factory = new ModelFactory(store, { namespace: argv['models-namespace'] ?? '', controlNamespace: config.controlNamespace, register: false });
  const models = [...defined, ...(await runtimeModels(factory))];
  const report = await compareWithModels(store, models, { namespace: argv.namespace, sample: argv.sample, kinds: argv.kinds });
  if (argv.json) return jsonLine(report);
  process.stdout.write(readable(report));
}

function readable(report: StoredVersusModels): string {
  const lines = [`Namespace ${JSON.stringify(report.namespace)}: kinds from ${report.source.kinds}; property names from ${report.source.properties}; types from a ${report.source.types}.`];
  if (report.note) lines.push(report.note);
  const rows: string[][] = [];
  for (const unknown of report.unknownKinds) rows.push([unknown.kind, 'unknown kind', '', `${unknown.sampled} sampled`, unknown.properties.join(', ')]);
  for (const kind of report.notStored) rows.push([kind, 'not stored', '', '', 'no model and no entities']);
  for (const kind of report.kinds) {
    const models = kind.models.map((m) => `${m.name} (${m.origin})`).join(', ');
    if (kind.orphaned.length + kind.mismatched.length + kind.neverStored.length === 0) rows.push([kind.kind, 'matches', '', `${kind.sampled} sampled`, models]);
    for (const o of kind.orphaned)
      rows.push([kind.kind, 'orphaned property', o.property, `${o.count} of ${kind.sampled}`, o.count === 0 ? `outside the sample (metadata: ${(o.representations ?? []).join(', ')})` : '']);
    for (const m of kind.mismatched)
      rows.push([kind.kind, 'wrong type', m.property, `${m.count} of ${kind.sampled}`, `${m.stored} where field ${m.field} is ${m.expected}; e.g. ${m.examples.join(', ')}`]);
    for (const field of kind.neverStored) rows.push([kind.kind, 'field never stored', field, `0 of ${kind.sampled}`, '']);
  }
  lines.push(rows.length ? table(['KIND', 'FINDING', 'PROPERTY', 'COUNT', 'DETAIL'], rows) : 'No kinds to compare: no model was found and no kind was named.');
  return `${lines.join('\n')}\n`;
}
