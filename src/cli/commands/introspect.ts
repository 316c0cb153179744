import type { CommandModule } from 'yargs';
import { Datastore, describeKind, listKinds } from '../../datastore';
import { DsMigrateError } from '../../errors';
import { resolveConfig } from '../config';
import { jsonLine, table } from '../output';
import type { GlobalFlags } from '../flags';

interface IntrospectFlags extends GlobalFlags {
  kinds?: string[];
  namespace: string;
  sample: number;
}

export const introspectCommand: CommandModule<GlobalFlags, IntrospectFlags> = {
  command: 'introspect [kinds..]',
  describe: "Show kinds' stored properties: types, index settings and how often each is present",
  builder: (y) =>
    y
      .positional('kinds', { type: 'string', array: true, describe: 'Kinds to describe (default: all, where the backend lists kinds)' })
      .option('namespace', { type: 'string', default: '', describe: 'Namespace to look in' })
      .option('sample', { type: 'number', default: 500, describe: 'Entities to read per kind' }),
  handler: async (argv) => {
    if (!Number.isInteger(argv.sample) || argv.sample < 1) throw new DsMigrateError('BAD_INPUT', `--sample must be a whole number of at least 1, not ${argv.sample}.`);
    const config = await resolveConfig(argv);
    const store = await Datastore.connect(config.store);
    try {
      const kinds = argv.kinds?.length ? argv.kinds : await listKinds(store, argv.namespace);
      if (!kinds) throw new DsMigrateError('BAD_INPUT', 'This backend does not list kinds (the Firestore-mode emulator answers no metadata queries): name them, e.g. dsmigrate introspect Person.');
      const shapes = [];
      for (const kind of kinds) shapes.push(await describeKind(store, kind, argv.namespace, argv.sample));
      if (argv.json) {
        jsonLine(shapes);
        return;
      }
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
    } finally {
      await store.close();
    }
  },
};
