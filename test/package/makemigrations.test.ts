import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Datastore, Entity, Key } from '../../src/datastore';
import { emulatorHosts, uniqueProject } from '../support/emulators';
import { appFolder, dsmigrate, packedApp } from '../support/packed-app';

/*
 * Django's workflow with the installed package, on each emulator: change a model, `dsmigrate makemigrations`,
 * `dsmigrate migrate`, and the data is exactly what the playbooks leave, property by property as stored.
 */

const N = 300;
const keys = (kind: string): Key[] => Array.from({ length: N }, (_, i) => Key.of(kind, i + 1));
const models = (kind: string, fields: string, options = '{}') =>
  `import { defineModel, field } from 'datastore-migrate';\n\nexport const Person = defineModel('${kind}', {\n${fields}\n}, ${options});\n`;
const INDEX = "indexes: [{ properties: [['name', 'asc'], ['colour', 'desc']] }]";
const V2_FIELDS = `  name: field.string(),
  colour: field.string({ default: 'blue' }),
  notes: field.string({ default: '', indexed: false }),
  email: field.string({ nullable: true, unique: true }),
  displayName: field.string({ nullable: true, renamedFrom: __RENAME__ }),`;

describe.each(Object.entries(emulatorHosts()))('makemigrations then migrate, with the packed package [%s]', (flavour, emulatorHost) => {
  let app: string;
  let store: Datastore;
  let env: NodeJS.ProcessEnv;
  let cwd: string;
  beforeAll(async () => {
    ({ app } = await packedApp());
    const projectId = uniqueProject('mm');
    store = await Datastore.connect({ emulatorHost, projectId });
    env = { ...process.env, DATASTORE_EMULATOR_HOST: emulatorHost, DATASTORE_PROJECT_ID: projectId };
    cwd = appFolder(app, `makemigrations-${flavour}-${projectId}`, {});
    writeFileSync(path.join(cwd, 'dsmigrate.config.ts'), "export default { models: ['models.ts'] };\n");
  }, 300_000);
  afterAll(() => store?.close());

  const run = (...args: string[]) => dsmigrate(app, cwd, args, env);
  const setModels = (source: string) => writeFileSync(path.join(cwd, 'models.ts'), source);
  const migrations = () => readdirSync(path.join(cwd, 'migrations')).sort();
  const ok = async (...args: string[]) => {
    const result = await run(...args);
    expect({ args, code: result.code, stderr: result.stderr }).toEqual({ args, code: 0, stderr: expect.not.stringMatching(/Error/) as unknown as string });
    return result;
  };

  it('writes each change as the playbooks order it, and migrate leaves the data exact', async () => {
    // Old shape: every entity has a nickname and an age; the first half an email each, unindexed notes nowhere.
    await store.save(
      keys('Person').map((key, i) => Entity.from(key, { name: `p${i}`, nickname: `nick${i}`, age: BigInt(i), ...(i < N / 2 && { email: `p${i}@example.com` }) }, { excludeFromIndexes: ['age'] })),
    );
    const before = new Map((await store.lookup(keys('Person'))).map((e) => [e!.key.toString(), e!]));

    setModels(models('Person', `  name: field.string(),\n  nickname: field.string({ nullable: true }),\n  email: field.string({ nullable: true }),\n  age: field.integer({ indexed: false })`));
    await ok('makemigrations');
    expect(migrations()).toEqual(['0001_initial.ts']);
    await ok('migrate');

    // New indexed field with a default, an unindexed one, a new unique field, a rename, a removed field, a composite index.
    setModels(models('Person', V2_FIELDS.replace('__RENAME__', "'nickname'"), `{ ${INDEX} }`));
    expect((await run('makemigrations', '--check')).code).toBe(1);
    expect(migrations()).toEqual(['0001_initial.ts']);
    const made = await ok('makemigrations');
    expect(made.stdout).toMatch(/Wrote .*0002_person_colour_and_more.ts/);
    expect((await run('makemigrations', '--check')).code).toBe(0);
    expect((await ok('makemigrations')).stdout).toMatch(/No changes/);
    expect(migrations()).toEqual(['0001_initial.ts', '0002_person_colour_and_more.ts']);
    const second = readFileSync(path.join(cwd, 'migrations', '0002_person_colour_and_more.ts'), 'utf8');
    expect(second).toContain("new AddFieldData('Person', 'colour', { default: 'blue' })");
    expect(second).toContain("new CopyFieldData('Person', 'nickname', 'displayName')");
    expect(second).toContain("new BuildUniqueMarkers('Person', 'email')");
    expect(second).toContain("// new RemoveFieldData('Person', 'age'),");
    expect(second).not.toContain("AddFieldData('Person', 'notes'");
    expect(readFileSync(path.join(cwd, 'index.yaml'), 'utf8')).toContain('- kind: Person\n  ancestor: no\n  properties:\n  - name: name\n    direction: asc\n  - name: colour\n    direction: desc');
    await ok('migrate');

    for (const e of await store.lookup(keys('Person'))) {
      const old = before.get(e!.key.toString())!;
      expect(e!.raw('colour')).toMatchObject({ valueType: 'stringValue', stringValue: 'blue', excludeFromIndexes: false });
      expect(e!.raw('displayName')).toEqual(old.raw('nickname'));
      expect(e!.raw('nickname')).toEqual(old.raw('nickname'));
      expect(e!.raw('age')).toEqual(old.raw('age'));
      expect(e!.raw('age')!.excludeFromIndexes).toBe(true);
      expect(e!.has('notes')).toBe(false);
      expect(e!.names().sort()).toEqual([...old.names(), 'colour', 'displayName'].sort());
    }
    const markers: string[] = [];
    for await (const m of store.query({ kind: '_dsmigrate_unique' })) markers.push(m.key.name!);
    expect(markers.sort()).toEqual(Array.from({ length: N / 2 }, (_, i) => `Person|email|s:p${i}@example.com`).sort());

    // The rename marked complete: the old property goes, nothing else changes.
    setModels(models('Person', V2_FIELDS.replace('__RENAME__', "{ name: 'nickname', complete: true }"), `{ ${INDEX} }`));
    await ok('makemigrations');
    expect(migrations().at(-1)).toBe('0003_remove_person_nickname.ts');
    const beforeRemove = await store.lookup(keys('Person'));
    await ok('migrate');
    const afterRemove = await store.lookup(keys('Person'));
    afterRemove.forEach((e, i) => {
      expect(e!.has('nickname')).toBe(false);
      for (const name of beforeRemove[i]!.names().filter((n) => n !== 'nickname')) expect(e!.raw(name)).toEqual(beforeRemove[i]!.raw(name));
    });

    // An ambiguous change stops, naming the choice, and writes nothing.
    setModels(models('Person', V2_FIELDS.replace('__RENAME__', "{ name: 'nickname', complete: true }").replace('colour:', 'hue:'), `{ indexes: [] }`));
    const ambiguous = await run('makemigrations');
    expect(ambiguous.code).toBe(2);
    expect(ambiguous.stderr).toMatch(/field "colour" \(string\) is gone and "hue" \(string\) is new.*renamedFrom: 'colour'[\s\S]*--no-rename/);
    expect(migrations()).toHaveLength(3);

    // The kind renamed: its entities are copied whole, keys and index settings as they were.
    setModels(models('People', V2_FIELDS.replace('__RENAME__', "{ name: 'nickname', complete: true }"), `{ renamedFrom: 'Person', indexes: [{ properties: [['name', 'asc'], ['colour', 'desc']] }] }`));
    await ok('makemigrations');
    expect(migrations().at(-1)).toBe('0004_rename_person_people_and_more.ts');
    expect(readFileSync(path.join(cwd, 'index.yaml'), 'utf8')).toContain('- kind: People');
    await ok('migrate');
    const copies = await store.lookup(keys('People'));
    copies.forEach((e, i) => {
      const source = afterRemove[i]!;
      expect(e!.key.id).toBe(source.key.id);
      expect(e!.names().sort()).toEqual(source.names().sort());
      for (const name of source.names()) expect(e!.raw(name)).toEqual(source.raw(name));
    });
    expect((await run('makemigrations', '--check')).code).toBe(0);
    expect(existsSync(path.join(cwd, 'migrations', '0005_'))).toBe(false);
  }, 300_000);
});
