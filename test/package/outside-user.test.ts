import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Datastore, Entity, Key } from '../../src/datastore';
import { freePort } from '../../emulator/datastore-emulator';
import { signBody, SIGNATURE_HEADER } from '../../src/executors/cloud-tasks';
import { emulatorHosts, uniqueProject } from '../support/emulators';
import { appFolder, bin, dsmigrate, installed, packedApp, publicExports, startDsmigrate, terminate, tsc, tsProject } from '../support/packed-app';

/** The README's code blocks that name their file on their first line (`// src/people.ts`), by that name. */
function readmeFiles(readme: string): Map<string, string> {
  return new Map([...readme.matchAll(/```ts\n(\/\/ (\S+)\n[\s\S]*?)```/g)].map((m) => [m[2], m[1]]));
}

/** Markdown without its code blocks, where a `# heading` is not one. */
const withoutBlocks = (markdown: string): string => markdown.replace(/```[\s\S]*?```/g, '');

/** Markdown without any code, where a `[text](target)` is not a link. */
const prose = (markdown: string): string => withoutBlocks(markdown).replace(/`[^`\n]*`/g, '');

/** The targets of a Markdown file's links that are not web (or mail) addresses. */
const relativeLinks = (markdown: string): string[] => [...prose(markdown).matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]).filter((target) => !/^[a-z][a-z+.-]*:/i.test(target));

/** The anchors of a Markdown file's headings, as GitHub and npm make them. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const [, heading] of withoutBlocks(markdown).matchAll(/^#{1,6} +(.+)$/gm)) {
    const slug = heading
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    out.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return out;
}

async function answers(host: string): Promise<boolean> {
  try {
    return (await fetch(`http://${host}/`, { signal: AbortSignal.timeout(2000) })).ok;
  } catch {
    return false;
  }
}

const keys = (kind: string, n: number): Key[] => Array.from({ length: n }, (_, i) => Key.of(kind, i + 1));

// Packing and installing takes a while: once per file, against the first emulator running.
const [flavour, host] = Object.entries(emulatorHosts())[0];

describe(`a user outside the repo [${flavour}]`, () => {
  let app: string;
  let installLog: string;
  const started: ChildProcess[] = [];
  const opened: Datastore[] = [];
  const connect = async (emulatorHost: string, projectId: string): Promise<Datastore> => {
    const store = await Datastore.connect({ emulatorHost, projectId });
    opened.push(store);
    return store;
  };

  beforeAll(async () => {
    ({ app, log: installLog } = await packedApp());
  }, 300_000);

  afterAll(async () => {
    await Promise.all(started.map(terminate));
    await Promise.all(opened.map((s) => s.close()));
  }, 60_000);

  it('installs the packed package and runs npx dsmigrate migrate on a .ts migration', async () => {
    const cwd = appFolder(app, 'colour', {
      '0001_add_colour.ts': `import { defineMigration, AddFieldData } from 'datastore-migrate';\n\nexport default defineMigration({\n  operations: [new AddFieldData('Person', 'colour', { default: 'blue' })],\n});\n`,
    });
    const projectId = uniqueProject('u');
    const store = await connect(host, projectId);
    await store.save(keys('Person', 40).map((key, i) => Entity.from(key, { name: `p${i}` })));
    const env = { ...process.env, DATASTORE_EMULATOR_HOST: host, DATASTORE_PROJECT_ID: projectId };
    const run = (args: string[]) => spawnSync('npx', ['--no-install', 'dsmigrate', ...args], { cwd, env, encoding: 'utf8' });

    const migrate = run(['migrate']);
    expect(migrate.stderr).not.toMatch(/Error|Warning/);
    expect(migrate.status).toBe(0);
    for (const e of await store.lookup(keys('Person', 40))) expect(e!.get('colour')).toBe('blue');

    const status = run(['status', '--json']);
    expect(status.status).toBe(0);
    expect(JSON.parse(status.stdout)).toEqual([expect.objectContaining({ app: 'default', name: '0001_add_colour', state: 'applied' })]);
    // Nothing to watch once the run ended: the message names the flag that picks an ended run.
    const idle = run(['status', '--watch']);
    expect(idle.status).toBe(2);
    expect(idle.stderr).toMatch(/No run is under way to watch.*--run <id>/);

    // dsmigrate verify passes on the migrated data, and names the key an old writer left without the field.
    const verified = run(['verify']);
    expect(verified.status).toBe(0);
    expect(verified.stdout).toMatch(/ok .*0001_add_colour.*40 entities/);
    await store.save([Entity.from(Key.of('Person', 'written-behind'), { name: 'old code' })]);
    const caught = run(['verify', '--json']);
    expect(caught.status).toBe(1);
    const summary = JSON.parse(caught.stdout.split('\n').find((l) => l.includes('"summary"'))!) as { ok: boolean; verdicts: { failed: number; samples: { key: string; problem: string }[] }[] };
    expect(summary.ok).toBe(false);
    expect(summary.verdicts[0]).toMatchObject({ failed: 1, samples: [{ key: 'Person:"written-behind"', problem: 'lacks colour' }] });
  }, 120_000);

  it('refuses the migration `dsmigrate create` writes until operations are added to it: exit 2, naming the file', async () => {
    const cwd = appFolder(app, 'fresh', {});
    const env = { ...process.env, DATASTORE_EMULATOR_HOST: host, DATASTORE_PROJECT_ID: uniqueProject('u') };

    const create = await dsmigrate(app, cwd, ['create', 'add_thing'], env);
    expect(create.code).toBe(0);
    expect(existsSync(path.join(cwd, 'migrations', '0001_add_thing.ts'))).toBe(true);

    const migrate = await dsmigrate(app, cwd, ['migrate'], env);
    expect(migrate.code).toBe(2);
    expect(migrate.stderr).toMatch(/0001_add_thing\.ts has no operations: add at least one/);
  }, 120_000);

  it('runs a map that reads and assigns entity.counter as with @google-cloud/datastore, and names a misspelt property it read', async () => {
    const cwd = appFolder(app, 'assigning', {
      // As a user of @google-cloud/datastore writes it; jiti loads .ts without type checking, as plain JavaScript would run.
      '0001_count.ts': `import { defineMigration, MapFunctionOnEntities } from 'datastore-migrate';\n\nexport default defineMigration({\n  operations: [\n    new MapFunctionOnEntities('Tally', (entity: any) => {\n      if (entity.countr !== 7) entity.counter = entity.counter + 1;\n      return entity;\n    }),\n  ],\n});\n`,
    });
    const projectId = uniqueProject('u');
    const store = await connect(host, projectId);
    await store.save(keys('Tally', 30).map((key, i) => Entity.from(key, { counter: 0, name: `t${i}` })));
    const env = { ...process.env, DATASTORE_EMULATOR_HOST: host, DATASTORE_PROJECT_ID: projectId };

    const migrate = await dsmigrate(app, cwd, ['migrate'], env);
    expect(migrate.code).toBe(0);
    expect(migrate.stderr).toMatch(/warning: entity\.countr read as undefined: no such property on the entity.*30 entities/);
    const after = await store.lookup(keys('Tally', 30));
    expect(after.map((e) => e!.toObject())).toEqual(keys('Tally', 30).map((_, i) => ({ counter: 1, name: `t${i}` })));

    const status = await dsmigrate(app, cwd, ['status', '--json'], env);
    expect(JSON.parse(status.stdout)).toEqual([expect.objectContaining({ name: '0001_count', state: 'applied' })]);
  }, 120_000);

  it('runs dsmigrate emulator, dsmigrate worker and migrate --executor cloud-tasks under injected faults: every entity +1 exactly once', async () => {
    const cwd = appFolder(app, 'cloud', {
      '0001_increment.ts': `import { defineMigration, MapFunctionOnEntities } from 'datastore-migrate';\n\nexport default defineMigration({\n  operations: [\n    new MapFunctionOnEntities('Counter', (entity) => {\n      entity.set('value', (entity.get('value') as number) + 1);\n    }, { shardCount: 6 }),\n  ],\n});\n`,
    });
    const workerPort = await freePort();
    // Seed 6 fails or repeats some of the run's first dispatches (it has only a dozen or so); --verbose
    // logs one line per dispatch on stderr, to show that the faults did happen.
    const faults = ['--fail-fraction', '0.2', '--duplicate-fraction', '0.1', '--seed', '6', '--verbose'];
    const emulator = await startDsmigrate(app, cwd, ['emulator', '--json', '--worker-port', String(workerPort), ...faults], process.env, started);
    const emulatorEnv = emulator.json as Record<string, string>;
    expect(Object.keys(emulatorEnv).sort()).toEqual(
      ['CLOUD_TASKS_EMULATOR_HOST', 'DATASTORE_EMULATOR_HOST', 'DATASTORE_PROJECT_ID', 'DSMIGRATE_TASKS_QUEUE', 'DSMIGRATE_WORKER_SECRET', 'DSMIGRATE_WORKER_URL'].sort(),
    );
    expect(emulatorEnv.DSMIGRATE_WORKER_URL).toBe(`http://127.0.0.1:${workerPort}/`);

    const store = await connect(emulatorEnv.DATASTORE_EMULATOR_HOST, emulatorEnv.DATASTORE_PROJECT_ID);
    const count = 120;
    await store.save(keys('Counter', count).map((key) => Entity.from(key, { value: 0 })));

    // What the emulator printed is all the worker and the CLI are given.
    const env = { ...process.env, ...emulatorEnv };
    const worker = await startDsmigrate(app, cwd, ['worker', '--json', '--port', String(workerPort)], env, started);
    expect(worker.json).toMatchObject({ event: 'listening', port: workerPort, auth: 'hmac' });

    const migrate = await dsmigrate(app, cwd, ['migrate', '--executor', 'cloud-tasks'], env);
    expect(migrate.stderr).not.toMatch(/Error/);
    expect(migrate.code).toBe(0);

    const values: unknown[] = [];
    for await (const entity of store.query({ kind: 'Counter' })) values.push(entity.get('value'));
    expect(values).toHaveLength(count);
    expect(values.every((v) => v === 1)).toBe(true);
    const status = await dsmigrate(app, cwd, ['status', '--json'], env);
    expect(JSON.parse(status.stdout)).toEqual([expect.objectContaining({ name: '0001_increment', state: 'applied' })]);
    // The run stays listed, and any machine can watch it by id: its end is told again with its counts.
    const { runs } = JSON.parse((await dsmigrate(app, cwd, ['status', '--json', '--runs'], env)).stdout) as { runs: { id: string; status: string; driver: string }[] };
    expect(runs[0]).toMatchObject({ status: 'done', driver: 'cloud-tasks' });
    const watched = await dsmigrate(app, cwd, ['status', '--watch', '--json', '--run', runs[0].id], env);
    expect(watched.code).toBe(0);
    const told = watched.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(told.find((e) => e.event === 'operation-done')).toMatchObject({ result: { scanned: count, changed: count } });
    expect(told.at(-1)).toMatchObject({ event: 'summary', applied: ['default:0001_increment'] });

    expect(emulator.stderr()).toMatch(/attempt \d+: HTTP status 503 \(injected by the emulator, not sent\)/);
    expect(emulator.stderr()).toMatch(/^duplicate delivery of /m);

    // SIGTERM stops the emulator command and both emulators with it.
    expect(await terminate(worker.child)).toBe(0);
    expect(await terminate(emulator.child)).toBe(0);
    expect(await answers(emulatorEnv.DATASTORE_EMULATOR_HOST)).toBe(false);
  }, 240_000);

  it('installs with no warning about a script of its own: the build runs before packing, and the package has no install scripts', () => {
    const warnings = installLog.split('\n').filter((line) => /warn/i.test(line));
    expect(warnings.filter((line) => /datastore-migrate|\bprepare\b|\bprepack\b/i.test(line))).toEqual([]);
    const { scripts = {} } = JSON.parse(readFileSync(path.join(installed(app), 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
    expect(Object.keys(scripts).filter((name) => ['preinstall', 'install', 'postinstall', 'prepare'].includes(name))).toEqual([]);
  });

  it('ships docs/ with the README, and every relative link of both resolves to a shipped file and heading; every source map to shipped sources', () => {
    const root = installed(app);
    expect(readdirSync(path.join(root, 'docs')).filter((f) => f.endsWith('.md')).length).toBeGreaterThan(0);
    const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
    expect(relativeLinks(readme).filter((target) => target.startsWith('../'))).toEqual([]);
    const broken: string[] = [];
    for (const file of ['README.md', ...readdirSync(path.join(root, 'docs')).map((f) => path.join('docs', f))].filter((f) => f.endsWith('.md'))) {
      const source = path.join(root, file);
      for (const link of relativeLinks(readFileSync(source, 'utf8'))) {
        const [target, anchor] = link.split('#');
        const resolved = target ? path.resolve(path.dirname(source), decodeURIComponent(target)) : source;
        if (path.relative(root, resolved).startsWith('..') || !existsSync(resolved)) broken.push(`${file}: ${link} (no such file in the package)`);
        else if (anchor && resolved.endsWith('.md') && !anchors(readFileSync(resolved, 'utf8')).has(anchor)) broken.push(`${file}: ${link} (no such heading)`);
      }
    }
    expect(broken).toEqual([]);

    const javascript = readdirSync(path.join(root, 'dist'), { recursive: true })
      .map(String)
      .filter((f) => f.endsWith('.js'));
    expect(javascript.length).toBeGreaterThan(0);
    const unmapped: string[] = [];
    for (const file of javascript) {
      const js = path.join(root, 'dist', file);
      const url = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(readFileSync(js, 'utf8'))?.[1];
      if (!url) continue;
      const map = path.resolve(path.dirname(js), url);
      if (!existsSync(map)) {
        unmapped.push(`${file}: ${url}`);
        continue;
      }
      const { sources, sourcesContent } = JSON.parse(readFileSync(map, 'utf8')) as { sources: string[]; sourcesContent?: string[] };
      for (const [i, s] of sources.entries()) if (!sourcesContent?.[i] && !existsSync(path.resolve(path.dirname(map), s))) unmapped.push(`${file}: ${s}`);
    }
    expect(unmapped).toEqual([]);
  });

  it('type-checks every public export in a strict app (skipLibCheck off) as CommonJS, as nodenext CommonJS and as an ES module; the values are the ones it exports at run time', () => {
    const exported = publicExports(app);
    const values = exported.filter((e) => e.value).map((e) => e.name);
    expect(values).toEqual(expect.arrayContaining(['Datastore', 'defineModel', 'defineMigration', 'loadGraph', 'migrate', 'plan', 'status', 'verify']));
    const names = exported.map((e) => (e.value ? e.name : `type ${e.name}`)).join(', ');
    const source = `import { ${names} } from 'datastore-migrate';\nexport { ${names} };\n`;
    const projects = [
      tsProject(app, 'types-commonjs', 'commonjs', { module: 'commonjs' }, { 'index.ts': source }),
      tsProject(app, 'types-nodenext-commonjs', 'commonjs', { module: 'nodenext' }, { 'index.ts': source }),
      tsProject(app, 'types-esm', 'module', { module: 'nodenext' }, { 'index.ts': source }),
    ];
    for (const dir of projects) {
      const checked = tsc(app, dir, ['--noEmit']);
      expect({ dir: path.basename(dir), output: checked.stdout + checked.stderr }).toEqual({ dir: path.basename(dir), output: '' });
      expect(checked.status).toBe(0);
    }
    const runtime = spawnSync(process.execPath, ['-p', "JSON.stringify(Object.keys(require('datastore-migrate')))"], { cwd: app, encoding: 'utf8' });
    expect((JSON.parse(runtime.stdout) as string[]).sort()).toEqual([...values].sort());
  }, 120_000);

  it("runs the README's snippets, type-checked under strict, in a CommonJS app and in an ES module app", async () => {
    const readme = readmeFiles(readFileSync(path.join(installed(app), 'README.md'), 'utf8'));
    const snippets = ['migrations/0002_add_colour.ts', 'src/people.ts', 'src/migrate-on-start.ts', 'test/migrations.test.ts'];
    expect(snippets.filter((file) => !readme.has(file))).toEqual([]);
    const files = {
      // The migration the README's 0002_add_colour.ts depends on.
      'migrations/0001_initial.ts': `import { defineMigration, AddFieldData } from 'datastore-migrate';\n\nexport default defineMigration({\n  operations: [new AddFieldData('Person', 'active', { default: true })],\n});\n`,
      ...Object.fromEntries(snippets.map((file) => [file, readme.get(file)!])),
    };
    for (const [type, module] of [
      ['commonjs', 'commonjs'],
      ['module', 'nodenext'],
    ] as const) {
      const cwd = tsProject(app, `readme-${type}`, type, { module }, files);
      const built = tsc(app, cwd);
      expect({ type, output: built.stdout + built.stderr }).toEqual({ type, output: '' });

      const projectId = uniqueProject('r');
      const store = await connect(host, projectId);
      const env = { ...process.env, DATASTORE_EMULATOR_HOST: host, DATASTORE_PROJECT_ID: projectId };
      const node = (args: string[]) => spawnSync(process.execPath, args, { cwd, env, encoding: 'utf8' });
      await store.save([Entity.from(Key.of('Person', 42), { name: 'Ann' })]);

      const people = node(['dist/src/people.js']);
      expect({ type, stderr: people.stderr, code: people.status }).toEqual({ type, stderr: '', code: 0 });
      expect((await store.get(Key.of('Person', 42)))!.toObject()).toEqual({ name: 'Ann', colour: 'blue', notes: 'met at the conference', tags: [], score: 0 });

      const started = node(['dist/src/migrate-on-start.js']);
      expect({ type, stdout: started.stdout, stderr: started.stderr }).toEqual({ type, stdout: 'Applied default:0001_initial, default:0002_add_colour.\n', stderr: '' });
      expect(node(['dist/src/migrate-on-start.js']).stdout).toBe('No migration was pending.\n');
      // What the code applied is what the CLI sees.
      const status = await dsmigrate(app, cwd, ['status', '--json'], env);
      expect(JSON.parse(status.stdout)).toEqual([expect.objectContaining({ name: '0001_initial', state: 'applied' }), expect.objectContaining({ name: '0002_add_colour', state: 'applied' })]);

      const tested = node(['--test', 'dist/test/migrations.test.js']);
      expect({ type, code: tested.status, output: tested.status === 0 ? '' : tested.stdout + tested.stderr }).toEqual({ type, code: 0, output: '' });
    }
  }, 240_000);

  it('squashes a migration that holds a function into a file that type-checks under strict in a CommonJS app and in an ES module app, and runs', async () => {
    const files = {
      'migrations/0001_colour.ts': `import { defineMigration, AddFieldData } from 'datastore-migrate';\n\nexport default defineMigration({\n  operations: [new AddFieldData('Person', 'colour', { default: 'blue' })],\n});\n`,
      'migrations/0002_loud.ts': `import { defineMigration, MapFunctionOnEntities } from 'datastore-migrate';\n\nexport default defineMigration({\n  operations: [new MapFunctionOnEntities('Person', (person) => void person.set('loud', true))],\n});\n`,
    };
    for (const [type, module] of [
      ['commonjs', 'commonjs'],
      ['module', 'nodenext'],
    ] as const) {
      const cwd = tsProject(app, `squash-${type}`, type, { module }, files);
      const squashed = await dsmigrate(app, cwd, ['squash', 'default', '0001', '0002', '--name', 'people'], process.env);
      expect({ type, code: squashed.code, stderr: squashed.stderr }).toEqual({ type, code: 0, stderr: '' });
      // The function is imported from its file, named as an ES module app must name it.
      expect(readFileSync(path.join(cwd, 'migrations', '0001_people.ts'), 'utf8')).toContain("import m0002 from './0002_loud.js';");
      const checked = tsc(app, cwd, ['--noEmit']);
      expect({ type, output: checked.stdout + checked.stderr }).toEqual({ type, output: '' });

      const projectId = uniqueProject('sq');
      const store = await connect(host, projectId);
      await store.save([Entity.from(Key.of('Person', 7), { name: 'Bo' })]);
      const migrated = await dsmigrate(app, cwd, ['migrate'], { ...process.env, DATASTORE_EMULATOR_HOST: host, DATASTORE_PROJECT_ID: projectId });
      expect({ type, code: migrated.code, stderr: migrated.stderr }).toEqual({ type, code: 0, stderr: expect.stringContaining('0001_people') as string });
      expect((await store.get(Key.of('Person', 7)))!.toObject()).toEqual({ name: 'Bo', colour: 'blue', loud: true });
    }
  }, 240_000);
});

/** An operator's way out of each trouble, with the installed package, on every emulator flavour running. */
describe.each(Object.entries(emulatorHosts()))('an operator in trouble, with the packed package [%s]', (_flavour, emulatorHost) => {
  let app: string;
  const opened: Datastore[] = [];
  const started: ChildProcess[] = [];
  beforeAll(async () => {
    ({ app } = await packedApp());
  }, 300_000);
  afterAll(async () => {
    await Promise.all(started.map(terminate));
    await Promise.all(opened.map((s) => s.close()));
  });

  async function project(): Promise<{ store: Datastore; env: NodeJS.ProcessEnv }> {
    const projectId = uniqueProject('op');
    const store = await Datastore.connect({ emulatorHost, projectId });
    opened.push(store);
    return { store, env: { ...process.env, DATASTORE_EMULATOR_HOST: emulatorHost, DATASTORE_PROJECT_ID: projectId } };
  }
  const count = async (store: Datastore, kind: string, where: (e: Entity) => boolean = () => true): Promise<number> => {
    let n = 0;
    for await (const e of store.query({ kind })) if (where(e)) n++;
    return n;
  };

  it('backs out past a DeleteModelData with migrate --fake <target>, which plan names and which changes no data', async () => {
    const { store, env } = await project();
    await store.save([...keys('Person', 20).map((key) => Entity.from(key, { name: 'p' })), ...keys('LegacyAudit', 30).map((key) => Entity.from(key, { at: 1 }))]);
    const cwd = appFolder(app, `fake-${uniqueProject('f')}`, {
      '0001_colour.ts': `import { defineMigration, AddFieldData } from 'datastore-migrate';\nexport default defineMigration({ operations: [new AddFieldData('Person', 'colour', { default: 'blue' })] });\n`,
      '0002_drop_audit.ts': `import { defineMigration, DeleteModelData } from 'datastore-migrate';\nexport default defineMigration({ operations: [new DeleteModelData('LegacyAudit')] });\n`,
    });
    expect((await dsmigrate(app, cwd, ['migrate'], env)).code).toBe(0);
    const refused = await dsmigrate(app, cwd, ['migrate', '0001'], env);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/irreversible.*`dsmigrate migrate <target> --fake`/s);
    expect((await dsmigrate(app, cwd, ['plan', '0001'], env)).stdout).toMatch(/Delete every LegacyAudit entity: IRREVERSIBLE[\s\S]*`dsmigrate migrate 0001 --fake`/);
    const faked = await dsmigrate(app, cwd, ['migrate', '0001', '--fake'], env);
    expect(faked.code).toBe(0);
    const status = JSON.parse((await dsmigrate(app, cwd, ['status', '--json'], env)).stdout) as { name: string; state: string }[];
    expect(status.map((r) => [r.name, r.state])).toEqual([
      ['0001_colour', 'applied'],
      ['0002_drop_audit', 'pending'],
    ]);
    expect(await count(store, 'LegacyAudit')).toBe(0);
    expect(await count(store, 'Person', (e) => e.get('colour') === 'blue')).toBe(20);
  }, 120_000);

  it('names a typo in a kind, and refuses it under --strict, and a switch given a value, with exit 2 and nothing changed', async () => {
    const { store, env } = await project();
    await store.save(keys('Order', 10).map((key) => Entity.from(key, { total: 1 })));
    const cwd = appFolder(app, `typo-${uniqueProject('t')}`, {
      '0001_currency.ts': `import { defineMigration, AddFieldData } from 'datastore-migrate';\nexport default defineMigration({ operations: [new AddFieldData('Oder', 'currency', { default: 'USD' })] });\n`,
    });
    expect((await dsmigrate(app, cwd, ['plan'], env)).stdout).toMatch(/warning: default:0001_currency: .*there is no Oder entity/);
    const strict = await dsmigrate(app, cwd, ['migrate', '--strict'], env);
    expect(strict.code).toBe(2);
    expect(strict.stderr).toMatch(/there is no Oder entity in namespace ""/);
    // A switch given a value is refused rather than read as false, which ran the migration for real.
    const dry = await dsmigrate(app, cwd, ['migrate', '--dry-run=yes'], env);
    expect({ code: dry.code, stderr: dry.stderr }).toEqual({ code: 2, stderr: 'dsmigrate: --dry-run takes no value: give it alone (or --dry-run=false), not --dry-run=yes.\n' });
    expect(JSON.parse((await dsmigrate(app, cwd, ['status', '--json'], env)).stdout)).toEqual([expect.objectContaining({ state: 'pending' })]);
  }, 120_000);

  it('copies into and deletes a kind with a unique field at the default batch size, its markers matching its entities', async () => {
    const { store, env } = await project();
    const n = 450;
    await store.save(keys('Member', n).map((key, i) => Entity.from(key, { email: `m${i}@example.com` })));
    const model = `import { defineModel, field } from 'datastore-migrate';\nexport const MemberCopy = defineModel('MemberCopy', { email: field.string({ unique: true }) });\n`;
    const cwd = appFolder(app, `unique-${uniqueProject('u')}`, {
      '0001_copy.ts': `import { defineMigration, CopyModelData } from 'datastore-migrate';\nimport { MemberCopy } from '../models';\nexport default defineMigration({ operations: [new CopyModelData('Member', MemberCopy)] });\n`,
      '0002_delete.ts': `import { defineMigration, DeleteModelData } from 'datastore-migrate';\nimport { MemberCopy } from '../models';\nexport default defineMigration({ operations: [new DeleteModelData(MemberCopy)] });\n`,
    });
    writeFileSync(path.join(cwd, 'models.ts'), model);
    const markers = () => count(store, '_dsmigrate_unique', (m) => m.get('kind') === 'MemberCopy');
    const copied = await dsmigrate(app, cwd, ['migrate', '0001'], env);
    expect({ code: copied.code, stderr: copied.stderr }).toEqual({ code: 0, stderr: expect.not.stringMatching(/at most 500 mutations/) as string });
    expect(await count(store, 'MemberCopy')).toBe(n);
    expect(await markers()).toBe(n);
    expect((await dsmigrate(app, cwd, ['migrate'], env)).code).toBe(0);
    expect(await count(store, 'MemberCopy')).toBe(0);
    expect(await markers()).toBe(0);
  }, 120_000);

  it('serves the worker as attacked: loopback with a shared secret, unsigned refused, bad signed tasks dropped, a secret with OIDC settings refused', async () => {
    const { env } = await project();
    const cwd = appFolder(app, `worker-${uniqueProject('w')}`, {});
    const secret = 'an-outside-users-secret-0123';
    const port = await freePort();
    const workerEnv = { ...env, DSMIGRATE_WORKER_SECRET: secret };
    const worker = await startDsmigrate(app, cwd, ['worker', '--json', '--port', String(port)], workerEnv, started);
    try {
      expect(worker.json).toMatchObject({ event: 'listening', port, auth: 'hmac', host: '127.0.0.1' });
      const send = async (body: Buffer, signed: boolean, headers: Record<string, string> = {}) => {
        const response = await fetch(`http://127.0.0.1:${port}/`, {
          method: 'POST',
          body,
          headers: { 'content-type': 'application/json', ...(signed ? { [SIGNATURE_HEADER]: signBody(secret, body) } : {}), ...headers },
        });
        return { status: response.status, body: (await response.json()) as Record<string, unknown> };
      };
      const task = { v: 2, type: 'slice', ns: '', run: 'run-20260101-000000-abcd', migration: 'default:0001_a', step: 0, shard: 0, slice: 0 };
      const json = (value: unknown) => Buffer.from(JSON.stringify(value));
      expect((await send(json(task), false)).status).toBe(401);
      const dropped = { status: 200, body: expect.objectContaining({ result: 'dropped' }) };
      expect(await send(json({ ...task, ns: 'bad namespace!' }), true)).toEqual(dropped);
      expect(await send(Buffer.from(`{"__proto__":{"x":1},${JSON.stringify(task).slice(1)}`), true)).toEqual(dropped);
      // A retry count in a header is not believed, and a task name in one is never deleted: the task is only stale.
      expect(await send(json(task), true, { 'X-CloudTasks-TaskRetryCount': '999', 'X-CloudTasks-TaskName': 'someone-elses-task' })).toEqual({
        status: 200,
        body: expect.objectContaining({ result: 'stale' }),
      });
    } finally {
      await terminate(worker.child);
    }
    const both = await dsmigrate(app, cwd, ['worker', '--port', String(port)], { ...workerEnv, DSMIGRATE_TASKS_SERVICE_ACCOUNT: 'tasks@example.iam.gserviceaccount.com' });
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/both a shared secret \(DSMIGRATE_WORKER_SECRET\) and OIDC settings/);
  }, 120_000);

  it('runs a RunFunction step once, runs it again after a SIGKILL before it completed, backs it out through its reverse, and refuses a back-out without one', async () => {
    const { store, env } = await project();
    await store.save(keys('Person', 10).map((key) => Entity.from(key, { name: 'p' })));
    const seed = (reverse: string) => `import { writeFileSync } from 'node:fs';
import { defineMigration, Entity, Key, RunFunction, type FunctionContext } from 'datastore-migrate';

const settings = Key.of('Settings', 'main');
const calls = Key.of('FnCalls', 'seed');

async function seedSettings({ store, log }: FunctionContext): Promise<number> {
  await store.transaction(async (tx) => {
    const seen = await tx.get(calls);
    tx.upsert(Entity.from(calls, { n: Number(seen?.get('n') ?? 0) + 1 }));
  });
  const created = await store.transaction(async (tx) => {
    if (await tx.get(settings)) return 0;
    tx.insert(Entity.from(settings, { theme: 'dark' }));
    return 1;
  });
  log(created ? 'created the default Settings' : 'the default Settings were there already');
  if (process.env.HANG_FILE) {
    writeFileSync(process.env.HANG_FILE, 'started');
    await new Promise(() => setInterval(() => undefined, 1000));
  }
  return created;
}

export default defineMigration({
  operations: [new RunFunction(seedSettings, { description: 'Create the default Settings'${reverse} })],
});
`;
    const cwd = appFolder(app, `fn-${uniqueProject('f')}`, { '0001_seed.ts': seed(', reverse: async ({ store }) => store.delete([settings])') });
    writeFileSync(path.join(cwd, 'dsmigrate.config.json'), JSON.stringify({ lockTtlSeconds: 2 }));
    const hang = path.join(cwd, 'hang');
    const child = spawn(bin(app), ['migrate'], { cwd, env: { ...env, HANG_FILE: hang }, stdio: 'ignore' });
    while (!existsSync(hang)) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const calls = async () => Number((await store.get(Key.of('FnCalls', 'seed')))?.get('n') ?? 0);
    expect(await calls()).toBe(1);

    const resumed = await dsmigrate(app, cwd, ['migrate', '--wait-lock', '30'], env);
    expect(resumed.code).toBe(0);
    expect(resumed.stderr).toContain('the default Settings were there already');
    expect(await calls()).toBe(2);
    expect((await store.get(Key.of('Settings', 'main')))?.toObject()).toEqual({ theme: 'dark' });

    const back = await dsmigrate(app, cwd, ['migrate', 'zero'], env);
    expect(back.code).toBe(0);
    expect(await store.get(Key.of('Settings', 'main'))).toBeUndefined();

    const irreversible = appFolder(app, `fn-${uniqueProject('i')}`, { '0001_seed.ts': seed('') });
    expect((await dsmigrate(app, irreversible, ['migrate'], env)).code).toBe(0);
    const refused = await dsmigrate(app, irreversible, ['migrate', 'zero'], env);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/Create the default Settings is irreversible.*reverse: 'noop'/s);
    expect((await store.get(Key.of('Settings', 'main')))?.toObject()).toEqual({ theme: 'dark' });
  }, 120_000);

  it('takes an official-client key in Model.get, and converts keys both ways', async () => {
    const { store } = await project();
    await store.save([Entity.from(Key.of('Order', 9007199254740993n), { total: 2000 })]);
    const script = `
const { Datastore } = require('@google-cloud/datastore');
const { Datastore: Store, defineModel, field, fromOfficialKey, toOfficialKey } = require('datastore-migrate');
async function main() {
  const official = new Datastore({ projectId: process.env.DATASTORE_PROJECT_ID });
  const store = await Store.connect();
  const Order = defineModel('Order', { total: field.integer() });
  const theirs = official.key(['Order', official.int('9007199254740993')]);
  const found = await Order.get(store, theirs);
  const back = toOfficialKey(fromOfficialKey(theirs), official);
  console.log(JSON.stringify({ total: found && found.values.total, id: String(back.id) }));
  await store.close();
}
main().catch((e) => { console.error(e); process.exit(1); });
`;
    const file = path.join(app, `official-${uniqueProject('o')}.cjs`);
    writeFileSync(file, script);
    const projectId = opened.at(-1)!.projectId;
    const ran = spawnSync(process.execPath, [file], { cwd: app, encoding: 'utf8', env: { ...process.env, DATASTORE_EMULATOR_HOST: emulatorHost, DATASTORE_PROJECT_ID: projectId } });
    expect({ status: ran.status, stderr: ran.stderr }).toEqual({ status: 0, stderr: '' });
    expect(JSON.parse(ran.stdout)).toEqual({ total: 2000, id: '9007199254740993' });
  }, 120_000);
});
