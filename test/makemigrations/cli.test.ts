import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { runCli, tempApp } from '../support/cli';

/* `dsmigrate makemigrations` from source, in a throwaway app: no Datastore is needed, it reads files only. */

const MODELS = (fields: string, options = '') =>
  `import { defineModel, field } from 'datastore-migrate';\n\nexport const Person = defineModel('Person', {\n${fields}\n}${options ? `, ${options}` : ''});\n`;
const V1 = MODELS(`  name: field.string(),\n  nickname: field.string({ nullable: true }),`);

function app(models = V1, extra: Record<string, string> = {}): string {
  return tempApp({ 'models.ts': models, 'dsmigrate.config.ts': "export default { models: ['models.ts'] };\n", ...extra });
}

const cli = (cwd: string, ...args: string[]) => runCli(['makemigrations', ...args], { cwd, env: process.env });
const files = (cwd: string, dir = 'migrations') => (existsSync(path.join(cwd, dir)) ? readdirSync(path.join(cwd, dir)).sort() : []);
const setModels = (cwd: string, source: string) => writeFileSync(path.join(cwd, 'models.ts'), source);

describe('dsmigrate makemigrations', () => {
  it('records the first state, writes nothing again without a change, and guards CI with --check', async () => {
    const cwd = app();
    const first = await cli(cwd);
    expect(first.code).toBe(0);
    expect(files(cwd)).toEqual(['0001_initial.ts']);
    expect(readFileSync(path.join(cwd, 'migrations', '0001_initial.ts'), 'utf8')).toMatch(/operations: \[\],\n {2}state: \{/);

    const again = await cli(cwd);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/No changes/);
    expect(files(cwd)).toEqual(['0001_initial.ts']);
    expect((await cli(cwd, '--check')).code).toBe(0);

    setModels(cwd, MODELS(`  name: field.string(),\n  nickname: field.string({ nullable: true }),\n  colour: field.string({ default: 'blue' }),`));
    const check = await cli(cwd, '--check');
    expect(check.code).toBe(1);
    expect(check.stderr).toMatch(/Person.colour added[\s\S]*Run dsmigrate makemigrations to write 0002_person_colour.ts/);

    const dry = await cli(cwd, '--dry-run');
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain("new AddFieldData('Person', 'colour', { default: 'blue' })");
    expect(files(cwd)).toEqual(['0001_initial.ts']);

    const json = await cli(cwd, '--json', '--name', 'Add colour!');
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({
      written: true,
      file: path.join(cwd, 'migrations', '0002_add_colour.ts'),
      operations: [{ description: 'Set Person.colour to "blue" where missing', commentedOut: false }],
    });
    expect(readFileSync(path.join(cwd, 'migrations', '0002_add_colour.ts'), 'utf8')).toContain("dependencies: ['0001_initial']");
    expect((await cli(cwd, '--check')).code).toBe(0);
  }, 60_000);

  it('stops on an ambiguous change, writing nothing, and names the choice; --no-rename settles it', async () => {
    const cwd = app();
    await cli(cwd);
    setModels(cwd, MODELS(`  name: field.string(),\n  displayName: field.string({ nullable: true }),`));
    const ambiguous = await cli(cwd);
    expect(ambiguous.code).toBe(2);
    expect(ambiguous.stderr).toMatch(/field "nickname" \(string\) is gone and "displayName" \(string\) is new/);
    expect(ambiguous.stderr).toContain("displayName: field.string({ renamedFrom: 'nickname' })");
    expect(ambiguous.stderr).toContain('--no-rename');
    expect(files(cwd)).toEqual(['0001_initial.ts']);
    const json = await cli(cwd, '--check', '--json');
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stdout)).toMatchObject({ code: 'BAD_INPUT', context: { kind: 'Person', field: 'nickname' } });

    const settled = await cli(cwd, '--no-rename');
    expect(settled.code).toBe(0);
    const written = readFileSync(path.join(cwd, 'migrations', files(cwd)[1]), 'utf8');
    expect(written).toContain("// new RemoveFieldData('Person', 'nickname'),");
    expect(written).toContain("new AddFieldData('Person', 'displayName', { default: null })");
  }, 60_000);

  it('writes index.yaml again when the composite indexes change, and says so in the description', async () => {
    const cwd = app();
    await cli(cwd);
    setModels(cwd, MODELS(`  name: field.string(),\n  nickname: field.string({ nullable: true }),`, "{ indexes: [{ properties: [['name', 'asc'], ['nickname', 'desc']] }] }"));
    const run = await cli(cwd, '--index-yaml', 'config/index.yaml');
    expect(run.code).toBe(0);
    expect(readFileSync(path.join(cwd, 'config', 'index.yaml'), 'utf8')).toContain('- kind: Person\n  ancestor: no\n  properties:\n  - name: name\n    direction: asc');
    expect(readFileSync(path.join(cwd, 'migrations', '0002_indexes.ts'), 'utf8')).toMatch(/description: 'composite indexes changed: index.yaml written again/);
    // The same models write index.yaml as dsmigrate indexes does.
    const indexes = await runCli(['indexes', '--out', 'check.yaml'], { cwd, env: process.env });
    expect(indexes.code).toBe(0);
    expect(readFileSync(path.join(cwd, 'check.yaml'), 'utf8')).toBe(readFileSync(path.join(cwd, 'config', 'index.yaml'), 'utf8'));
  }, 60_000);

  it('takes the app with --dir app=path, and a hand-written migration records no state', async () => {
    const handWritten = `import { defineMigration, MapFunctionOnEntities } from 'datastore-migrate';\n\nexport default defineMigration({ operations: [new MapFunctionOnEntities('Person', () => undefined)] });\n`;
    const cwd = app(V1, { 'people/migrations/0001_by_hand.ts': handWritten });
    const run = await cli(cwd, '--dir', 'people=people/migrations', '--json');
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ app: 'people', file: path.join(cwd, 'people', 'migrations', '0002_initial.ts') });
    expect(readFileSync(path.join(cwd, 'people', 'migrations', '0002_initial.ts'), 'utf8')).toContain("dependencies: ['0001_by_hand']");
    expect((await cli(cwd, '--dir', 'people=people/migrations', '--check')).code).toBe(0);
  }, 60_000);

  it.each([
    ['no models named', { config: 'export default {};\n' }, [], /No models to read.*--models/],
    ['several apps and no --app', {}, ['--dir', 'a=a', '--dir', 'b=b'], /several apps \(a, b\).*--app/],
    ['an unknown --app', {}, ['--app', 'billing'], /No migrations directory has the app label "billing"/],
    ['a --name without letters', {}, ['--name', '!!!'], /--name "!!!" has no letters or digits/],
    ['--check with --dry-run', {}, ['--check', '--dry-run'], /--check and --dry-run do not go together/],
    [
      'a model renamedFrom a kind still defined',
      { models: `${V1}export const People = defineModel('People', { name: field.string() }, { renamedFrom: 'Person' });\n` },
      [],
      /Model People is renamedFrom "Person", which is still a model/,
    ],
    ['a model renamedFrom itself', { models: MODELS('  name: field.string(),', "{ renamedFrom: 'Person' }") }, [], /Model Person: renamedFrom names the model's own kind/],
  ])(
    '%s: exit 2, nothing written',
    async (_label, setup: { config?: string; models?: string }, args, message) => {
      const cwd = app(setup.models ?? V1, setup.config ? { 'dsmigrate.config.ts': setup.config } : {});
      const run = await cli(cwd, ...args);
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(message);
      expect(files(cwd)).toEqual([]);
    },
    30_000,
  );

  it('refuses a hand-edited state, naming the file', async () => {
    const cwd = app();
    await cli(cwd);
    const file = path.join(cwd, 'migrations', '0001_initial.ts');
    writeFileSync(file, readFileSync(file, 'utf8').replace("type: 'string'", "type: 'text'"));
    const run = await cli(cwd);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/0001_initial.ts .*state has a bad field 1 in kind Person.*restore the file from version control/);
  }, 30_000);
});
