import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { runCli, tempApp } from '../support/cli';

const MODELS = `
import { defineModel, field } from 'datastore-migrate';

export const Task = defineModel('Task', { done: field.boolean(), priority: field.integer(), created: field.timestamp() }, {
  indexes: [{ properties: [['done', 'asc'], ['priority', 'desc']] }, { properties: [['created', 'desc']], ancestor: true }],
});
`;

const PEOPLE = `
import { defineModel, field } from 'datastore-migrate';

export const Person = defineModel('Person', { name: field.string(), age: field.integer() }, { indexes: [{ properties: [['age', 'asc'], ['name', 'desc']] }] });
`;

const EXPECTED = `# Written by \`dsmigrate indexes\` from the models' declared indexes; change the models, not this file.
indexes:

- kind: Person
  ancestor: no
  properties:
  - name: age
    direction: asc
  - name: name
    direction: desc

- kind: Task
  ancestor: no
  properties:
  - name: done
    direction: asc
  - name: priority
    direction: desc

- kind: Task
  ancestor: yes
  properties:
  - name: created
    direction: desc
`;

describe('dsmigrate indexes', () => {
  const env = process.env;

  it('writes index.yaml from the modules named in the config; --check passes on it and fails on a drifted file', async () => {
    const app = tempApp({ 'dsmigrate.config.ts': "export default { models: ['src/models'] };\n", 'src/models/task.ts': MODELS, 'src/models/person.ts': PEOPLE });
    const written = await runCli(['indexes'], { cwd: app, env });
    expect(written.stderr).toBe('');
    expect(written.code).toBe(0);
    expect(readFileSync(path.join(app, 'index.yaml'), 'utf8')).toBe(EXPECTED);

    const clean = await runCli(['indexes', '--check'], { cwd: app, env });
    expect([clean.code, clean.stdout]).toEqual([0, `${path.join(app, 'index.yaml')} matches the models' 3 composite index(es).\n`]);

    writeFileSync(path.join(app, 'index.yaml'), EXPECTED.replace('direction: desc', 'direction: asc'));
    const drifted = await runCli(['indexes', '--check'], { cwd: app, env });
    expect(drifted.code).toBe(1);
    expect(drifted.stderr).toBe(`${path.join(app, 'index.yaml')} differs from the models' 3 composite index(es): run dsmigrate indexes to rewrite it.\n`);
    expect(readFileSync(path.join(app, 'index.yaml'), 'utf8')).not.toBe(EXPECTED);

    const json = await runCli(['indexes', '--check', '--json'], { cwd: app, env });
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ upToDate: false, indexes: [{ kind: 'Person' }, { kind: 'Task', ancestor: false }, { kind: 'Task', ancestor: true }] });
  });

  it('takes --models and --out, and --check fails on a missing file', async () => {
    const app = tempApp({ 'models.ts': PEOPLE });
    const missing = await runCli(['indexes', '--check', '--models', 'models.ts', '--out', 'deploy/index.yaml'], { cwd: app, env });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/deploy\/index.yaml is missing the models' 1 composite index\(es\)/);

    const json = await runCli(['indexes', '--models', 'models.ts', '--out', 'out.yaml', '--json'], { cwd: app, env });
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({
      file: path.join(app, 'out.yaml'),
      written: true,
      indexes: [
        {
          kind: 'Person',
          ancestor: false,
          properties: [
            { name: 'age', direction: 'asc' },
            { name: 'name', direction: 'desc' },
          ],
        },
      ],
    });
    expect(readFileSync(path.join(app, 'out.yaml'), 'utf8')).toContain('- kind: Person\n');
  });

  it('exits 2 naming the module, kind and field when a model declares a bad index, when a module throws, and when no models are named', async () => {
    const app = tempApp({ 'models.ts': PEOPLE.replace("['name', 'desc']", "['nmae', 'desc']") });
    const bad = await runCli(['indexes', '--models', 'models.ts'], { cwd: app, env });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe(`dsmigrate: Models module ${path.join(app, 'models.ts')}: Model Person: index 1 names "nmae", which is not a field of the model.\n`);

    // A module that throws is quoted, with one full stop.
    const throwing = tempApp({ 'models.ts': "throw new Error('no database URL here')" });
    const thrown = await runCli(['indexes', '--models', 'models.ts'], { cwd: throwing, env });
    expect({ code: thrown.code, stderr: thrown.stderr }).toEqual({ code: 2, stderr: `dsmigrate: Models module ${path.join(throwing, 'models.ts')} cannot be loaded: no database URL here.\n` });

    const none = await runCli(['indexes'], { cwd: app, env });
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/No models to read: list the modules that define them in dsmigrate.config/);
  });
});
