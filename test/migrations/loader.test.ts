import path from 'node:path';
import { DsMigrateError } from '../../src/errors';
import { buildGraph, loadMigrationFiles, type MigrationSource } from '../../src/migrations';
import { tempApp } from '../support/cli';

const empty = (deps?: string[]) =>
  `import { defineMigration, DeleteModelData } from 'datastore-migrate';\nexport default defineMigration({ ${deps ? `dependencies: ${JSON.stringify(deps)}, ` : ''}operations: [new DeleteModelData('Unused')] });\n`;

async function load(files: Record<string, string>, apps: Record<string, string> = { default: 'migrations' }) {
  const root = tempApp(files);
  const sources: MigrationSource[] = Object.entries(apps).map(([app, dir]) => ({ app, dir: path.join(root, dir) }));
  return { root, graph: buildGraph(await loadMigrationFiles(sources)) };
}

describe('migration loader and graph', () => {
  it('loads .ts, .js, .mjs and .cjs files with no build step, defaulting to the previous file as dependency', async () => {
    const { graph } = await load({
      'migrations/0001_initial.ts': empty(),
      'migrations/0002_second.js': `const { defineMigration, DeleteModelData } = require('datastore-migrate');\nmodule.exports = defineMigration({ operations: [new DeleteModelData('Unused')] });\n`,
      'migrations/0003_third.mjs': `import { defineMigration, DeleteModelData } from 'datastore-migrate';\nexport default defineMigration({ operations: [new DeleteModelData('Unused')] });\n`,
      'migrations/0004_fourth.cjs': `const { defineMigration, DeleteModelData } = require('datastore-migrate');\nmodule.exports = defineMigration({ operations: [new DeleteModelData('Unused')] });\n`,
      'migrations/README.md': 'ignored',
      'migrations/helpers.ts': 'export const x = 1;',
    });
    expect(graph.ordered.map((m) => m.id)).toEqual(['default:0001_initial', 'default:0002_second', 'default:0003_third', 'default:0004_fourth']);
    expect(graph.byId.get('default:0003_third')!.dependencies).toEqual(['default:0002_second']);
    expect(graph.ordered[0].checksum).toMatch(/^[0-9a-f]{16}$/);
  });

  it('orders across apps by their dependencies', async () => {
    const { graph } = await load(
      {
        'billing/0001_invoices.ts': empty(['users:0002_emails']),
        'billing/0002_totals.ts': empty(),
        'users/0001_people.ts': empty(),
        'users/0002_emails.ts': empty(),
      },
      { billing: 'billing', users: 'users' },
    );
    expect(graph.ordered.map((m) => m.id)).toEqual(['users:0001_people', 'users:0002_emails', 'billing:0001_invoices', 'billing:0002_totals']);
  });

  const cases: [string, Record<string, string>, RegExp][] = [
    ['a syntax error', { 'migrations/0001_bad.ts': 'export default defineMigration({ operations: [ }' }, /0001_bad\.ts cannot be loaded/],
    ['a missing default export', { 'migrations/0001_nodefault.ts': 'export const x = 1;' }, /0001_nodefault\.ts has no default export made by defineMigration/],
    ['an unknown dependency', { 'migrations/0001_a.ts': empty(['0000_nope']) }, /0001_a\.ts depends on unknown migration "default:0000_nope"/],
    ['a cycle', { 'migrations/0001_a.ts': empty(['0002_b']), 'migrations/0002_b.ts': empty(['0001_a']) }, /cycle: default:0001_a -> default:0002_b -> default:0001_a .*0001_a\.ts/],
    ['duplicate names', { 'migrations/0001_a.ts': empty(), 'migrations/0001_a.js': empty() }, /0001_a\.ts duplicate migration name "0001_a" .*0001_a\.js/],
    [
      'two leaves in one app',
      { 'migrations/0001_a.ts': empty(), 'migrations/0002_b.ts': empty(['0001_a']), 'migrations/0002_c.ts': empty(['0001_a']) },
      /2 latest migrations .*0002_b\.ts, .*0002_c\.ts/,
    ],
    ['a badly named file', { 'migrations/1_first.ts': empty() }, /1_first\.ts is not named NNNN_name/],
    [
      'a migration without its number',
      { 'migrations/0001_a.ts': empty(), 'migrations/add_colour.ts': empty() },
      /add_colour\.ts defines a migration but is not numbered, so it would never run: rename it to NNNN_add_colour\.ts/,
    ],
  ];
  it.each(cases)('rejects %s, naming the file', async (_, files, message) => {
    const error = await load(files).then(
      () => undefined,
      (e: unknown) => e as DsMigrateError,
    );
    expect(error).toBeInstanceOf(DsMigrateError);
    expect(error!.code).toBe('MIGRATION_LOAD');
    expect(error!.exitCode).toBe(2);
    expect(error!.message).toMatch(message);
  });
});
