import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Datastore, Entity, Key } from '../../src/datastore';
import { runCli, tempApp } from '../support/cli';
import { emulatorHosts, uniqueProject } from '../support/emulators';

/**
 * `plan` and `migrate --check` promise what `migrate` will do, so they must refuse what `migrate`
 * refuses, with its message and exit code: a plan that `migrate` then rejects would mislead a CI gate.
 */
const hosts = emulatorHosts();
const host = hosts.firestore ?? Object.values(hosts)[0]!;

const migration = (operation: string, imports: string) => `import { defineMigration, ${imports} } from 'datastore-migrate';
export default defineMigration({
  operations: [
    ${operation},
  ],
});
`;
const colour = (value: string) => migration(`new AddFieldData('Person', 'colour', { default: '${value}' })`, 'AddFieldData');

describe('dsmigrate plan and migrate --check refuse what migrate refuses', () => {
  let store: Datastore;
  let env: NodeJS.ProcessEnv;
  beforeEach(async () => {
    store = await Datastore.connect({ emulatorHost: host, projectId: uniqueProject('plan') });
    env = { ...process.env, DATASTORE_EMULATOR_HOST: host, DATASTORE_PROJECT_ID: store.projectId, GOOGLE_CLOUD_PROJECT: store.projectId };
  });
  afterEach(async () => {
    await store.close();
  });

  const cli = (app: string, ...args: string[]) => runCli(args, { cwd: app, env });

  it('an applied migration whose file was edited: exit 2 naming the file and the checksums, unless --allow-changed', async () => {
    await store.save([Entity.from(Key.of('Person', 1), { name: 'a' })]);
    const app = tempApp({ 'migrations/0001_colour.ts': colour('blue') });
    expect((await cli(app, 'migrate')).code).toBe(0);
    writeFileSync(path.join(app, 'migrations/0001_colour.ts'), colour('green'));
    writeFileSync(path.join(app, 'migrations/0002_size.ts'), migration("new AddFieldData('Person', 'size', { default: 1 })", 'AddFieldData'));

    const refused = await cli(app, 'migrate');
    expect({ code: refused.code, stderr: refused.stderr }).toEqual({
      code: 2,
      stderr: expect.stringMatching(/0001_colour\.ts was changed after it was applied \(checksum [0-9a-f]{16}, now [0-9a-f]{16}\)\. .*--allow-changed/) as string,
    });
    for (const args of [['plan'], ['migrate', '--check']]) {
      const result = await cli(app, ...args);
      expect({ args, code: result.code, stderr: result.stderr }).toEqual({ args, code: 2, stderr: refused.stderr });
    }

    const allowed = await cli(app, 'plan', '--allow-changed', '--json');
    expect(allowed.code).toBe(0);
    expect((JSON.parse(allowed.stdout.trim()) as { id: string }[]).map((m) => m.id)).toEqual(['default:0002_size']);
    const check = await cli(app, 'migrate', '--check', '--allow-changed');
    expect({ code: check.code, stdout: check.stdout }).toEqual({ code: 1, stdout: 'Pending: default:0002_size\n' });
    expect((await store.get(Key.of('Person', 1)))?.toObject()).toEqual({ name: 'a', colour: 'blue' });
  });

  it('a pending operation that fails its validation: refused with its own error', async () => {
    await store.save([Entity.from(Key.of('Person', 1), { email: 'a@x.org' }), Entity.from(Key.of('Person', 2), { email: 'a@x.org' }), Entity.from(Key.of('Person', 3), { email: 'b@x.org' })]);
    const app = tempApp({ 'migrations/0001_unique_email.ts': migration("new BuildUniqueMarkers('Person', 'email')", 'BuildUniqueMarkers') });

    const refused = await cli(app, 'migrate');
    expect({ code: refused.code, stderr: refused.stderr }).toEqual({
      code: 2,
      stderr: expect.stringMatching(/BuildUniqueMarkers on Person found 1 group\(s\) of entities sharing a value of "email" \(a@x\.org: Person:1, Person:2\)/) as string,
    });
    for (const args of [['plan'], ['migrate', '--check']]) {
      const result = await cli(app, ...args);
      expect({ args, code: result.code, stderr: result.stderr }).toEqual({ args, code: 2, stderr: refused.stderr });
    }
  });
});
