import { Entity, Key, type Datastore } from '../../src/datastore';
import { describeEachFlavour, uniqueProject } from '../support/emulators';
import { runCli, tempApp } from '../support/cli';

const N = 120;

const MIGRATIONS = {
  'migrations/0001_colour.ts': `
import { defineMigration, AddFieldData } from 'datastore-migrate';
export default defineMigration({ operations: [new AddFieldData('Person', 'colour', { default: 'blue' })] });
`,
  'migrations/0002_emails.ts': `
import { defineMigration, MapFunctionOnEntities } from 'datastore-migrate';
export default defineMigration({
  operations: [
    new MapFunctionOnEntities('Person', (p) => void p.set('email', String(p.get('email')).toLowerCase()), {
      verify: (p) => p.get('email') === String(p.get('email')).toLowerCase(),
    }),
    new MapFunctionOnEntities('Person', (p) => void p.set('touched', true)),
  ],
});
`,
  'migrations/0003_archive.ts': `
import { defineMigration, CopyModelData } from 'datastore-migrate';
export default defineMigration({ operations: [new CopyModelData('Person', 'PersonArchive')] });
`,
};

interface Verdict {
  migration: string;
  operation: number;
  verifiable: boolean;
  scanned: number;
  failed: number;
  samples: { key: string; problem: string }[];
}

function summary(stdout: string): { ok: boolean; verdicts: Verdict[] } {
  const line = stdout.split('\n').find((l) => l.includes('"event":"summary"'));
  if (!line) throw new Error(`no summary in: ${stdout}`);
  return JSON.parse(line) as { ok: boolean; verdicts: Verdict[] };
}

describeEachFlavour('dsmigrate verify', (ctx) => {
  let store: Datastore;
  let env: NodeJS.ProcessEnv;
  let app: string;
  beforeAll(async () => {
    const projectId = uniqueProject('v');
    store = await ctx.connect({ projectId });
    env = { ...ctx.env(), DATASTORE_PROJECT_ID: projectId, GOOGLE_CLOUD_PROJECT: projectId };
    app = tempApp(MIGRATIONS);
    await store.save(Array.from({ length: N }, (_, i) => Entity.from(i % 2 ? Key.of('Person', i + 1) : Key.of('Person', `p${i}`), { email: `Person.${i}@Example.COM` })));
  });

  it('refuses a migration that is not applied, changing nothing', async () => {
    const refused = await runCli(['verify', '0001'], { cwd: app, env });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('default:0001_colour is pending, not applied');
  });

  it('passes after the migrations, and fails naming the keys an old writer left behind', async () => {
    expect((await runCli(['migrate'], { cwd: app, env })).code).toBe(0);
    const passed = await runCli(['verify', '--json'], { cwd: app, env });
    expect(passed.code).toBe(0);
    const ok = summary(passed.stdout);
    expect(ok.ok).toBe(true);
    expect(ok.verdicts.map((v) => [v.migration, v.operation, v.verifiable, v.scanned, v.failed])).toEqual([
      ['default:0001_colour', 0, true, N, 0],
      ['default:0002_emails', 0, true, N, 0],
      ['default:0002_emails', 1, false, 0, 0],
      ['default:0003_archive', 0, true, N, 0],
    ]);

    // Old code saves a Person without the field, with an upper-case email, and never archived.
    await store.save([Entity.from(Key.of('Person', 'late'), { email: 'LATE@EXAMPLE.COM' })]);
    const failed = await runCli(['verify', '--json'], { cwd: app, env });
    expect(failed.code).toBe(1);
    const bad = summary(failed.stdout);
    expect(bad.ok).toBe(false);
    const byOperation = Object.fromEntries(bad.verdicts.map((v) => [`${v.migration}#${v.operation}`, v]));
    expect(byOperation['default:0001_colour#0']).toMatchObject({ scanned: N + 1, failed: 1, samples: [{ key: 'Person:"late"', problem: 'lacks colour' }] });
    expect(byOperation['default:0002_emails#0']).toMatchObject({ failed: 1, samples: [{ key: 'Person:"late"', problem: 'fails verify()' }] });
    expect(byOperation['default:0003_archive#0']).toMatchObject({ failed: 1, samples: [{ key: 'Person:"late"', problem: 'has no copy at PersonArchive:"late"' }] });

    const one = await runCli(['verify', '0003'], { cwd: app, env });
    expect(one.code).toBe(1);
    expect(one.stdout).toMatch(/FAILED .*0003_archive.*1 of 121 entities/);
    expect(one.stdout).toContain('Person:"late" has no copy at PersonArchive:"late"');
  });
});
