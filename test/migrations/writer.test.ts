import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { Double, GeoPoint, Key } from '../../src/datastore';
import { DsMigrateError } from '../../src/errors';
import { loadMigrationFiles, type LoadedMigration } from '../../src/migrations';
import { migrationSource, writableProblem, type MigrationFile } from '../../src/migrations/writer';
import { defineModel, field } from '../../src/model';
import {
  AddFieldData,
  BuildUniqueMarkers,
  CopyFieldData,
  CopyModelData,
  CopyModelDataToNamespace,
  DeleteModelData,
  MapFunctionOnEntities,
  RemoveFieldData,
  type Operation,
} from '../../src/operations';
import { REPO, tempApp } from '../support/cli';

const long = 'x'.repeat(120);

/** What prettier makes of the source, with the repository's settings. */
function prettier(source: string): string {
  return execFileSync(process.execPath, [require.resolve('prettier/bin/prettier.cjs'), '--config', path.join(REPO, '.prettierrc.json'), '--stdin-filepath', 'migration.ts'], {
    input: source,
    encoding: 'utf8',
  });
}

/** Writes the files into a migrations folder and loads them all through the real loader. */
async function load(files: Record<string, string>): Promise<Map<string, LoadedMigration>> {
  const root = tempApp(Object.fromEntries(Object.entries(files).map(([name, source]) => [`migrations/${name}.ts`, source])));
  const loaded = await loadMigrationFiles([{ app: 'default', dir: path.join(root, 'migrations') }]);
  return new Map(loaded.map((m) => [m.name, m]));
}

const fingerprints = (operations: readonly Operation[]) => operations.map((op) => op.fingerprint());
const written = (operations: Operation[]): MigrationFile => ({ dependencies: [], operations: operations.map((operation) => ({ operation })) });

describe('migrationSource', () => {
  const Person = defineModel('Person', { colour: field.string(), email: field.string(), legacy: field.string() });
  const every: Operation[] = [
    new AddFieldData('Person', 'colour', { default: 'blue' }),
    new AddFieldData(Person, 'colour', { default: 'it\'s "quoted" \\ and\nbroken', overwrite: true, namespace: ['', 'tenant-b'], filter: { status: 'active' }, batchSize: 100 }),
    new AddFieldData('Person', 'when', { default: new Date('2024-01-02T03:04:05.678Z'), indexed: false }),
    new AddFieldData('Person', 'owner', { default: Key.of('Org', 'acme', 'Team', 9007199254740993n, 'Member', 7, { namespace: 'tenant-b' }) }),
    new AddFieldData('Person', 'home', { default: new GeoPoint(51.5, -0.125) }),
    new AddFieldData('Person', 'score', { default: new Double(3) }),
    new AddFieldData('Person', 'big', { default: 12345678901234567890n }),
    new AddFieldData('Person', 'nothing', { default: null }),
    new AddFieldData('Person', 'avatar', { default: Buffer.from([0, 1, 2, 255]) }),
    new AddFieldData('Person', 'tags', { default: Array.from({ length: 90 }, (_, i) => i * 1001 - 5) }),
    new AddFieldData('Person', 'settings', {
      default: {
        'odd key': 1,
        nested: {
          list: [
            { a: 1, b: 2 },
            { a: 3, b: 4 },
          ],
          text: long + long,
        },
      },
    }),
    new RemoveFieldData(Person, 'legacy', { reverse: { default: 'none' }, filter: [{ property: 'status', op: 'IN', value: ['a', 'b'] }] }),
    new RemoveFieldData('Person', 'legacy', { reverse: 'noop', rate: { maxEntitiesPerSecond: 500, rampUp: true } }),
    new CopyFieldData('Person', 'email', 'contact', { overwrite: false }),
    new DeleteModelData('Person' + long, { namespace: '*', shardCount: 4, skipErrors: true }),
    new CopyModelData(Person, 'PersonArchive', { overwriteExisting: true }),
    new CopyModelDataToNamespace('Person', 'tenant-c', { toKind: Person, namespace: ['', 'tenant-a'] }),
    new BuildUniqueMarkers('Person', 'email'),
  ];

  it('writes every operation so that the loader makes it again: same fingerprints, prettier-clean, importing exactly what it uses', async () => {
    const source = migrationSource({ header: ['Written by a test.'], description: 'Every operation', ...written(every) });
    expect(prettier(source)).toBe(source);
    const imports = /^import \{ ([^}]+) \} from 'datastore-migrate';$/m.exec(source)![1].split(', ');
    expect(imports.sort()).toEqual(
      ['AddFieldData', 'BuildUniqueMarkers', 'CopyFieldData', 'CopyModelData', 'CopyModelDataToNamespace', 'DeleteModelData', 'Double', 'GeoPoint', 'Key', 'RemoveFieldData', 'defineMigration'].sort(),
    );
    expect(source.startsWith('// Written by a test.\n\nimport')).toBe(true);
    // A model given as a kind is written as its kind name.
    expect(source).not.toContain('fields');
    const m = (await load({ '0001_every': source })).get('0001_every')!;
    // Under jest the file's Date is another realm's, which the fingerprint does not recognise: compare it by hand.
    const [, , { default: when }] = m.definition.operations[2].deconstruct() as [string, string, { default: Date }];
    expect(when.toISOString()).toBe('2024-01-02T03:04:05.678Z');
    const withoutDate = (ops: readonly Operation[]) => fingerprints(ops.filter((_, i) => i !== 2));
    expect(withoutDate(m.definition.operations)).toEqual(withoutDate(every));
    expect(m.definition.description).toBe('Every operation');
    expect(m.dependencies).toEqual([]);
  });

  it('takes an operation that holds a function from its own file, and refuses to write it as literals', async () => {
    const map = new MapFunctionOnEntities('Person', (entity) => void entity.set('n', 1));
    const problem = writableProblem(map);
    expect(problem).toBeInstanceOf(DsMigrateError);
    expect(problem!.code).toBe('BAD_INPUT');
    expect(problem!.context).toMatchObject({ operation: 'MapFunctionOnEntities', argument: 'argument 2' });
    expect(problem!.message).toMatch(/MapFunctionOnEntities \(Run a function on every Person entity\) cannot be written as literals: its argument 2 is a function/);
    expect(() => migrationSource(written([map]))).toThrow(DsMigrateError);
    expect(writableProblem(new AddFieldData('Person', 'n', { default: (e) => String(e.get('name')) }))?.message).toMatch(/argument 3.default is a function/);
    expect(writableProblem(every[3])).toBeUndefined();

    const original = `import { AddFieldData, MapFunctionOnEntities, defineMigration } from 'datastore-migrate';

export default defineMigration({
  dependencies: [],
  operations: [new AddFieldData('Person', 'n', { default: 0 }), new MapFunctionOnEntities('Person', (entity) => void entity.set('n', 1))],
});
`;
    const source = migrationSource({
      dependencies: ['0001_backfill'],
      replaces: ['0001_backfill'],
      operations: [
        { operation: new AddFieldData('Person', 'n', { default: 0 }), comment: ['From 0001_backfill.'] },
        { reference: { file: '0001_backfill.ts', index: 1 }, comment: ['Holds a function: copy it here before deleting 0001_backfill.'] },
        { operation: new DeleteModelData('Person'), commentedOut: true, comment: ['Dropped: shown, not run.'] },
        { reference: { file: './0001_backfill.ts', index: 1 } },
      ],
    });
    expect(prettier(source)).toBe(source);
    expect(source).toContain("import m0001 from './0001_backfill.js';");
    expect(source.match(/^import m0001/gm)).toHaveLength(1);
    expect(source).toContain('    // new DeleteModelData(');
    expect(source).not.toMatch(/import \{[^}]*DeleteModelData/);
    const loaded = await load({ '0001_backfill': original, '0002_squashed': source });
    const squashed = loaded.get('0002_squashed')!;
    expect(squashed.definition.operations).toHaveLength(3);
    expect(fingerprints(squashed.definition.operations)).toEqual(fingerprints([new AddFieldData('Person', 'n', { default: 0 }), map, map]));
  });

  it('lays out short and long files as prettier does', () => {
    const short = migrationSource({ operations: [{ operation: new DeleteModelData('A') }] });
    expect(short).toBe(`import { DeleteModelData, defineMigration } from 'datastore-migrate';\n\nexport default defineMigration({\n  operations: [new DeleteModelData('A')],\n});\n`);
    const many = Array.from({ length: 30 }, (_, i) => `00${String(i).padStart(2, '0')}_a_rather_long_migration_name`);
    const wide = migrationSource({
      description: long + long,
      dependencies: many,
      replaces: many,
      ...written([new CopyModelData('Person' + long, 'Archive' + long, { namespace: 'tenant-a' })]),
      state: { models: [{ kind: 'Person', fields: [{ name: 'n', type: 'integer', default: 0 }], text: 'a\'b"c' + long }], order: [1, 2], none: null, yes: true },
    });
    expect(prettier(wide)).toBe(wide);
  });

  it('refuses values it cannot write faithfully, naming where they are', () => {
    class Money {
      constructor(readonly cents: number) {}
    }
    expect(() => migrationSource({ operations: [], state: { money: new Money(5) } as never })).toThrow(/state.money is an instance of Money/);
    const withProto = Object.defineProperty({}, '__proto__', { value: 1, enumerable: true });
    const unsafe = new AddFieldData('Person', 'x', { default: withProto as never });
    expect(writableProblem(unsafe)?.message).toMatch(/__proto__/);
  });
});
