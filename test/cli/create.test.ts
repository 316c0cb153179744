import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Datastore, Entity, Key } from '../../src/datastore';
import { loadMigrationFiles } from '../../src/migrations';
import { runCli, tempApp } from '../support/cli';
import { emulatorHosts, uniqueProject } from '../support/emulators';

const hosts = emulatorHosts();
const host = hosts.firestore ?? Object.values(hosts)[0]!;

describe('dsmigrate create', () => {
  let store: Datastore;
  let env: NodeJS.ProcessEnv;
  beforeAll(async () => {
    const projectId = uniqueProject('create');
    store = await Datastore.connect({ emulatorHost: host, projectId });
    env = { ...process.env, DATASTORE_EMULATOR_HOST: host, DATASTORE_PROJECT_ID: projectId, GOOGLE_CLOUD_PROJECT: projectId };
    // What the old template's AddFieldData('Kind', 'field', ...) wrote into, and what the examples name.
    await store.save([Entity.from(Key.of('Kind', 1), { name: 'k' }), Entity.from(Key.of('Person', 1), { email: 'A@B.C', nickname: 'a', legacy: 1 })]);
  });
  afterAll(async () => {
    await store.close();
  });

  it('writes a template whose examples are commented out, which migrate refuses (exit 2, naming the file) until an operation is added', async () => {
    const app = tempApp({});
    const created = await runCli(['create', 'add_thing', '--json'], { cwd: app, env });
    expect(created.code).toBe(0);
    const file = path.join(app, 'migrations', '0001_add_thing.ts');
    expect(JSON.parse(created.stdout.trim())).toEqual({ created: file });
    const text = readFileSync(file, 'utf8');
    expect(text).toMatch(/operations: \[\n(\s+\/\/.*\n)+\s+\],/);
    expect(text.split('\n').filter((line) => /new \w+\(/.test(line) && !line.trim().startsWith('//'))).toEqual([]);

    const refused = await runCli(['migrate'], { cwd: app, env });
    expect({ code: refused.code, stderr: refused.stderr }).toEqual({
      code: 2,
      stderr: expect.stringContaining(`${file} has no operations: add at least one to its operations list`) as string,
    });
    expect((await store.get(Key.of('Kind', 1)))?.toObject()).toEqual({ name: 'k' });
    const records: Entity[] = [];
    for await (const record of store.query({ kind: '_dsmigrate_migration' })) records.push(record);
    expect(records).toEqual([]);

    // Every commented example is valid code: uncommented, plan lists them all.
    const uncommented = text.replace(/^(\s*)\/\/ (import|new| {2}|\}\))/gm, '$1$2');
    writeFileSync(file, uncommented);
    const plan = await runCli(['plan', '--json'], { cwd: app, env });
    expect(plan.code).toBe(0);
    const [step] = JSON.parse(plan.stdout.trim()) as { operations: { type: string }[] }[];
    expect(step.operations.map((op) => op.type)).toEqual(['AddFieldData', 'RemoveFieldData', 'CopyFieldData', 'MapFunctionOnEntities']);

    // With one of them kept, migrate applies it.
    writeFileSync(
      file,
      text.replace('// import { AddFieldData, RemoveFieldData, CopyFieldData, MapFunctionOnEntities }', 'import { AddFieldData }').replace("// new AddFieldData('Person'", "new AddFieldData('Person'"),
    );
    const applied = await runCli(['migrate'], { cwd: app, env });
    expect({ code: applied.code, stderr: applied.stderr }).toEqual({ code: 0, stderr: expect.stringContaining('applied default:0001_add_thing') as string });
    expect((await store.get(Key.of('Person', 1)))?.get('colour')).toBe('blue');
    expect((await store.get(Key.of('Kind', 1)))?.toObject()).toEqual({ name: 'k' });
  });

  it('numbers files after the last one, writes --empty without examples, and refuses a name without letters or digits', async () => {
    const app = tempApp({ 'migrations/0007_earlier.ts': '' });
    expect((await runCli(['create', 'Second Thing', '--empty'], { cwd: app, env })).code).toBe(0);
    expect(readdirSync(path.join(app, 'migrations')).sort()).toEqual(['0007_earlier.ts', '0008_second_thing.ts']);
    const text = readFileSync(path.join(app, 'migrations', '0008_second_thing.ts'), 'utf8');
    expect(text).toContain("description: 'Second Thing'");
    expect(text).toContain('operations: []');
    expect(text).not.toContain('new ');

    const refused = await runCli(['create', '!!!'], { cwd: app, env });
    expect({ code: refused.code, stderr: refused.stderr }).toEqual({ code: 2, stderr: expect.stringContaining('"!!!" has no letters or digits to name a file with') as string });
    const unknownApp = await runCli(['create', 'x', '--app', 'billing'], { cwd: app, env });
    expect({ code: unknownApp.code, stderr: unknownApp.stderr }).toEqual({ code: 2, stderr: expect.stringContaining('No migrations directory has the app label "billing"') as string });
    expect(readdirSync(path.join(app, 'migrations'))).toHaveLength(2);
  });

  it("writes any name as exactly that description: quotes, backslashes, replacement patterns ($&, $'), backticks and line breaks inject nothing", async () => {
    const app = tempApp({});
    const names = ["it's \\'; process.exit(7); //", "a $& b $` c $' d $$ e $1", '`${process.exit(7)}` \\`', "line one\nprocess.exit(7); // '\r\u2028\u2029 end\\", 'quotes \\\\\'\\"'];
    const migrationsDir = path.join(app, 'migrations');
    for (const name of names) expect((await runCli(['create', name, '--empty'], { cwd: app, env })).code).toBe(0);
    const files = readdirSync(migrationsDir).sort();
    expect(files).toHaveLength(names.length);
    // Loadable once they have an operation (a file without one is refused), each with its name as written.
    for (const file of files) {
      const text = readFileSync(path.join(migrationsDir, file), 'utf8');
      writeFileSync(
        path.join(migrationsDir, file),
        text
          .replace("import { defineMigration } from 'datastore-migrate';", "import { defineMigration, AddFieldData } from 'datastore-migrate';")
          .replace('operations: []', "operations: [new AddFieldData('Kind', 'x', { default: 1 })]"),
      );
    }
    const loaded = await loadMigrationFiles([{ app: 'default', dir: migrationsDir }]);
    expect(loaded.map((m) => m.definition.description)).toEqual(names);
  });
});
