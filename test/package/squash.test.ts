import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Datastore, Entity, Key } from '../../src/datastore';
import { emulatorHosts, uniqueProject } from '../support/emulators';
import { appFolder, dsmigrate, packedApp } from '../support/packed-app';

const MIGRATIONS: Record<string, string> = {
  '0001_colour.ts': `import { AddFieldData, defineMigration } from 'datastore-migrate';\nexport default defineMigration({ operations: [new AddFieldData('Person', 'colour', { default: 'blue' })] });\n`,
  '0002_count.ts': `import { MapFunctionOnEntities, defineMigration } from 'datastore-migrate';\nexport default defineMigration({ operations: [new MapFunctionOnEntities('Person', (p) => void p.set('count', Number(p.get('count') ?? 0) + 1))] });\n`,
  '0003_tmp.ts': `import { AddFieldData, RemoveFieldData, defineMigration } from 'datastore-migrate';\nexport default defineMigration({ operations: [new AddFieldData('Person', 'tmp', { default: 1 }), new RemoveFieldData('Person', 'tmp')] });\n`,
};

describe.each(Object.entries(emulatorHosts()))('dsmigrate squash from the installed package [%s]', (_flavour, host) => {
  let app: string;
  const opened: Datastore[] = [];
  beforeAll(async () => {
    ({ app } = await packedApp());
  }, 600_000);
  afterAll(() => Promise.all(opened.map((s) => s.close())));

  it('writes a file that the installed package loads and applies, on a fresh store and on one that ran the originals', async () => {
    const cwd = appFolder(app, `squash-${uniqueProject('s')}`, MIGRATIONS);
    const stores = await Promise.all(
      ['fresh', 'ran'].map(async () => {
        const projectId = uniqueProject('sqp');
        const store = await Datastore.connect({ emulatorHost: host, projectId });
        opened.push(store);
        await store.save([Entity.from(Key.of('Person', 'a'), { name: 'a' }), Entity.from(Key.of('Person', 2), { name: 'b' })]);
        return { store, env: { ...process.env, DATASTORE_EMULATOR_HOST: host, DATASTORE_PROJECT_ID: projectId, GOOGLE_CLOUD_PROJECT: projectId } };
      }),
    );
    const [fresh, ran] = stores;
    expect((await dsmigrate(app, cwd, ['migrate'], ran.env)).code).toBe(0);

    const squash = await dsmigrate(app, cwd, ['squash', 'default', '0001', '0003', '--json'], fresh.env);
    expect(squash.code).toBe(0);
    const created = (JSON.parse(squash.stdout) as { created: string }).created;
    expect(path.basename(created)).toBe('0001_squashed_0003_tmp.ts');
    expect(readFileSync(created, 'utf8')).toContain("import m0002 from './0002_count.js';");

    expect((await dsmigrate(app, cwd, ['migrate'], fresh.env)).code).toBe(0);
    expect((await dsmigrate(app, cwd, ['migrate'], ran.env)).stdout).not.toMatch(/0001_squashed_0003_tmp/);
    for (const { store, env } of stores) {
      const status = JSON.parse((await dsmigrate(app, cwd, ['status', '--json'], env)).stdout) as { name: string; state: string }[];
      expect(status.map((r) => [r.name, r.state])).toEqual([['0001_squashed_0003_tmp', 'applied']]);
      for await (const person of store.query({ kind: 'Person' })) {
        expect(person.raw('colour')?.stringValue).toBe('blue');
        expect(person.raw('count')?.integerValue).toBe('1');
        expect(person.has('tmp')).toBe(false);
      }
    }
  });
});
