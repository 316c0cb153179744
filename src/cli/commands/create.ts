import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { CommandModule } from 'yargs';
import { DsMigrateError } from '../../errors';
import { resolveConfig } from '../config';
import { jsonLine } from '../output';
import type { GlobalFlags } from '../flags';

interface CreateFlags extends GlobalFlags {
  name: string;
  empty: boolean;
  app?: string;
}

// The examples stay commented out: a template that ran as written would change real data (an
// AddFieldData on 'Kind' once did), and a file left with no operations is refused when it loads.
const TEMPLATE = `import { defineMigration } from 'datastore-migrate';
// import { AddFieldData, RemoveFieldData, CopyFieldData, MapFunctionOnEntities } from 'datastore-migrate';

export default defineMigration({
  description: __DESCRIPTION__,
  operations: [
    // Add at least one operation (a migration without any is refused), for example:
    // new AddFieldData('Person', 'colour', { default: 'blue' }),
    // new RemoveFieldData('Person', 'legacy'),
    // new CopyFieldData('Person', 'nickname', 'displayName'),
    // new MapFunctionOnEntities('Person', (person) => {
    //   person.set('email', String(person.get('email')).toLowerCase());
    // }),
  ],
});
`;

const EMPTY_TEMPLATE = `import { defineMigration } from 'datastore-migrate';

export default defineMigration({
  description: __DESCRIPTION__,
  // Add at least one operation: a migration without any is refused.
  operations: [],
});
`;

export const createCommand: CommandModule<GlobalFlags, CreateFlags> = {
  command: 'create <name>',
  describe: 'Write a new migration file with the next number',
  builder: (y) =>
    y
      .positional('name', { type: 'string', demandOption: true, describe: 'Words for the file name, e.g. add_colour' })
      .option('empty', { type: 'boolean', default: false, describe: 'No commented examples of operations' })
      .option('app', { type: 'string', describe: 'Which app directory, when there are several' }),
  handler: async (argv) => {
    const config = await resolveConfig(argv);
    const slug = argv.name
      .trim()
      .toLowerCase()
      .replace(/[^a-z0-9_-]+/g, '_')
      .replace(/^_+|_+$/g, '');
    if (!slug) throw new DsMigrateError('BAD_INPUT', `"${argv.name}" has no letters or digits to name a file with.`);
    const source = argv.app ? config.sources.find((s) => s.app === argv.app) : config.sources[0];
    if (!source) throw new DsMigrateError('BAD_INPUT', `No migrations directory has the app label "${argv.app}" (known: ${config.sources.map((s) => s.app).join(', ')}).`);
    if (!argv.app && config.sources.length > 1) throw new DsMigrateError('BAD_INPUT', `There are several apps (${config.sources.map((s) => s.app).join(', ')}): choose one with --app.`);
    mkdirSync(source.dir, { recursive: true });
    const numbers = readdirSync(source.dir)
      .map((f) => /^(\d{4})_/.exec(f)?.[1])
      .filter((n): n is string => n !== undefined)
      .map(Number);
    const next = String((numbers.length ? Math.max(...numbers) : 0) + 1).padStart(4, '0');
    const file = path.join(source.dir, `${next}_${slug}.ts`);
    if (existsSync(file)) throw new DsMigrateError('BAD_INPUT', `${file} already exists.`, { file });
    // A function, not a string: a replacement string would read `$&`, `$'` and the like in the name as patterns.
    writeFileSync(
      file,
      (argv.empty ? EMPTY_TEMPLATE : TEMPLATE).replace('__DESCRIPTION__', () => stringLiteral(argv.name)),
    );
    if (argv.json) jsonLine({ created: file });
    else process.stdout.write(`Created ${file}\n`);
  },
};

/**
 * `text` as a single-quoted string literal that reads back as exactly `text`: JSON's escaping (backslashes,
 * quotes, line breaks and every other control character), with the quotes swapped for the template's.
 */
function stringLiteral(text: string): string {
  return `'${JSON.stringify(text).slice(1, -1).replace(/\\"/g, '"').replace(/'/g, "\\'")}'`;
}
