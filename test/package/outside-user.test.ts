import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Datastore, Entity, Key } from '../../src/datastore';
import { REPO } from '../support/cli';
import { emulatorHosts, uniqueProject } from '../support/emulators';

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** Packs this repository as npm would publish it and installs it into a new app. */
function installPackedApp(): string {
  const packDir = mkdtempSync(path.join(tmpdir(), 'dsm-pack-'));
  execFileSync(npm, ['pack', '--silent', '--pack-destination', packDir], { cwd: REPO, stdio: ['ignore', 'ignore', 'inherit'] });
  const tarball = path.join(packDir, readdirSync(packDir).find((f) => f.endsWith('.tgz'))!);
  const app = mkdtempSync(path.join(tmpdir(), 'dsm-user-'));
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'user-app', private: true, dependencies: { 'datastore-migrate': `file:${tarball}` } }));
  execFileSync(npm, ['install', '--no-audit', '--no-fund', '--loglevel', 'error'], { cwd: app, stdio: ['ignore', 'ignore', 'inherit'] });
  mkdirSync(path.join(app, 'migrations'));
  writeFileSync(
    path.join(app, 'migrations', '0001_add_colour.ts'),
    `import { defineMigration, AddFieldData } from 'datastore-migrate';\n\nexport default defineMigration({\n  operations: [new AddFieldData('Person', 'colour', { default: 'blue' })],\n});\n`,
  );
  return app;
}

// Packing and installing takes a while; once, against the first emulator running, is enough.
const [flavour, host] = Object.entries(emulatorHosts())[0];

describe(`a user outside the repo [${flavour}]`, () => {
  it('installs the packed package and runs npx dsmigrate migrate on a .ts migration', async () => {
    const app = installPackedApp();
    const projectId = uniqueProject('u');
    const store = await Datastore.connect({ emulatorHost: host, projectId });
    try {
      await store.save(Array.from({ length: 40 }, (_, i) => Entity.from(Key.of('Person', i + 1), { name: `p${i}` })));
      const env = { ...process.env, DATASTORE_EMULATOR_HOST: host, DATASTORE_PROJECT_ID: projectId };
      const run = (args: string[]) => spawnSync('npx', ['--no-install', 'dsmigrate', ...args], { cwd: app, env, encoding: 'utf8' });

      const migrate = run(['migrate']);
      expect(migrate.stderr).not.toMatch(/Error|Warning/);
      expect(migrate.status).toBe(0);
      for (const e of await store.lookup(Array.from({ length: 40 }, (_, i) => Key.of('Person', i + 1)))) expect(e!.get('colour')).toBe('blue');

      const status = run(['status', '--json']);
      expect(status.status).toBe(0);
      expect(JSON.parse(status.stdout)).toEqual([expect.objectContaining({ app: 'default', name: '0001_add_colour', state: 'applied' })]);
    } finally {
      await store.close();
    }
  }, 300_000);
});
