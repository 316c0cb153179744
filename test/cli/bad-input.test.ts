import { Datastore, Entity, Key } from '../../src/datastore';
import { Lease } from '../../src/migrations';
import { runCli, tempApp } from '../support/cli';
import { emulatorHosts, uniqueProject } from '../support/emulators';

/**
 * Bad input through the CLI, as a user's shell runs it, against one emulator (the Firestore-mode one
 * where it runs): every row exits 2 with a message naming the flag, option or file, and changes nothing.
 */
const hosts = emulatorHosts();
const host = hosts.firestore ?? Object.values(hosts)[0]!;
const projectId = uniqueProject('bad');
const env = (): NodeJS.ProcessEnv => ({ ...process.env, DATASTORE_EMULATOR_HOST: host, DATASTORE_PROJECT_ID: projectId, GOOGLE_CLOUD_PROJECT: projectId });

const PEOPLE = 20;
const CONTROL = ['_dsmigrate_migration', '_dsmigrate_job', '_dsmigrate_shard', '_dsmigrate_lock'];

const migration = (operation: string, imports = 'AddFieldData') => `import { defineMigration, ${imports} } from 'datastore-migrate';
export default defineMigration({
  operations: [
    ${operation},
  ],
});
`;
const GOOD = { 'migrations/0001_colour.ts': migration("new AddFieldData('Person', 'colour', { default: 'blue' })") };
/** One bad operation in the second file, so that the first (good) one must not run either. */
const bad = (operation: string, imports?: string) => ({ ...GOOD, 'migrations/0002_bad.ts': migration(operation, imports) });
const loadError = (why: string) => new RegExp(`0002_bad\\.ts cannot be loaded: ${why}`);

interface Row {
  args?: string[];
  files?: Record<string, string>;
  message: RegExp;
}

const rows: [string, Row][] = [
  ['--concurrency 0', { args: ['migrate', '--concurrency', '0'], message: /--concurrency must be a whole number of shards at once, at least 1 .*not 0/ }],
  ['--concurrency abc', { args: ['migrate', '--concurrency', 'abc'], message: /--concurrency must be a whole number .*not a number/ }],
  ['concurrency 0 in the config file', { files: { ...GOOD, 'dsmigrate.config.json': '{"concurrency": 0}' }, message: /concurrency in .*dsmigrate\.config\.json must be a whole number/ }],
  ['--wait-lock abc', { args: ['migrate', '--wait-lock', 'abc'], message: /--wait-lock takes a number of seconds \(0 or more\), not a number/ }],
  ['--wait-lock -1', { args: ['migrate', '--wait-lock=-1'], message: /--wait-lock takes a number of seconds \(0 or more\), not -1/ }],
  ['--dir to a missing folder', { args: ['migrate', '--dir', 'nowhere'], message: /Migrations directory .*nowhere \(app "default"\) cannot be read/ }],
  ['--config to a missing file', { args: ['migrate', '--config', 'missing.json'], message: /Config file .*missing\.json does not exist/ }],
  [
    '--config to a broken file',
    {
      args: ['migrate', '--config', 'broken.json'],
      files: { ...GOOD, 'broken.json': '{"lockTtlSeconds": ' },
      message: /Config file .*broken\.json cannot be loaded: .*Unexpected end of JSON input\.\n$/,
    },
  ],
  [
    'a config file with a syntax error',
    { files: { ...GOOD, 'dsmigrate.config.ts': 'export default {\n  dir: [' }, message: /Config file .*dsmigrate\.config\.ts cannot be loaded: .*Unexpected token \S*dsmigrate\.config\.ts:2:8\.\n$/ },
  ],
  [
    'a migration file with a syntax error',
    { files: { ...GOOD, 'migrations/0002_bad.ts': 'export default {\n  operations: [' }, message: /0002_bad\.ts cannot be loaded: .*Unexpected token \S*0002_bad\.ts:2:15\.\n$/ },
  ],
  // yargs reads a switch given any value but true or false as false: the command would run for real.
  ['--dry-run=yes', { args: ['migrate', '--dry-run=yes'], message: /--dry-run takes no value: give it alone \(or --dry-run=false\), not --dry-run=yes\./ }],
  ['--check=1', { args: ['migrate', '--check=1'], message: /--check takes no value: .*not --check=1\./ }],
  ['--fake=1', { args: ['migrate', '--fake=1'], message: /--fake takes no value: .*not --fake=1\./ }],
  ['--json=no', { args: ['status', '--json=no'], message: /--json takes no value: .*not --json=no\./ }],
  ['--restart with no migration', { args: ['migrate', '--restart'], message: /Not enough arguments following: restart/ }],
  ['--control-namespace with a space', { args: ['migrate', '--control-namespace', 'bad name'], message: /--control-namespace: "bad name" holds characters other than letters, digits/ }],
  ['--control-namespace reserved', { args: ['migrate', '--control-namespace', '__ops__'], message: /--control-namespace: "__ops__" is reserved/ }],
  ['--control-namespace too long', { args: ['migrate', '--control-namespace', 'n'.repeat(101)], message: /--control-namespace: .* is 101 characters long, and a namespace has at most 100/ }],
  [
    'controlNamespace in the config file',
    { files: { ...GOOD, 'dsmigrate.config.json': '{"controlNamespace": "ops/1"}' }, message: /controlNamespace in .*dsmigrate\.config\.json: "ops\/1" holds characters/ },
  ],
  ['--executor nope', { args: ['migrate', '--executor', 'nope'], message: /Argument: executor, Given: "nope", Choices: "local", "cloud-tasks"/ }],
  ['an unknown target', { args: ['migrate', '0042_nope'], message: /Unknown target "0042_nope"/ }],
  [
    'lockTtlSeconds 0',
    { files: { ...GOOD, 'dsmigrate.config.json': '{"lockTtlSeconds": 0}' }, message: /lockTtlSeconds in .*dsmigrate\.config\.json must be a number of seconds, at least 1 .*not 0/ },
  ],
  ['lockTtlSeconds -5', { files: { ...GOOD, 'dsmigrate.config.json': '{"lockTtlSeconds": -5}' }, message: /lockTtlSeconds .* at least 1 .*not -5/ }],
  ['lockTtlSeconds "60"', { files: { ...GOOD, 'dsmigrate.config.json': '{"lockTtlSeconds": "60"}' }, message: /lockTtlSeconds .*must be a number of seconds.*not "60"/ }],
  [
    'an operation without its property name',
    // One full stop: the operation's message ends its sentence, and the loader quotes it.
    { files: bad("new AddFieldData('Person', undefined as never, { default: 1 })"), message: loadError('AddFieldData on Person needs a property name, not undefined\\.\\n') },
  ],
  [
    'shardCount 0',
    { files: bad("new AddFieldData('Person', 'x', { default: 1, shardCount: 0 })"), message: loadError('AddFieldData on Person: shardCount must be a whole number from 1 to 1000, not 0') },
  ],
  [
    'shardCount -1',
    { files: bad("new AddFieldData('Person', 'x', { default: 1, shardCount: -1 })"), message: loadError('AddFieldData on Person: shardCount must be a whole number from 1 to 1000, not -1') },
  ],
  [
    "shardCount 'x'",
    { files: bad("new AddFieldData('Person', 'x', { default: 1, shardCount: 'x' as never })"), message: loadError('AddFieldData on Person: shardCount must be a whole number from 1 to 1000, not x') },
  ],
  [
    'batchSize 0',
    { files: bad("new RemoveFieldData('Person', 'x', { batchSize: 0 })", 'RemoveFieldData'), message: loadError('RemoveFieldData on Person: batchSize must be a whole number from 1 to 499') },
  ],
  [
    'batchSize 600',
    {
      files: bad("new RemoveFieldData('Person', 'x', { batchSize: 600 })", 'RemoveFieldData'),
      message: loadError('RemoveFieldData on Person: batchSize must be a whole number from 1 to 499 .*not 600'),
    },
  ],
  [
    "skipErrors 'yes'",
    { files: bad("new DeleteModelData('Person', { skipErrors: 'yes' as never })", 'DeleteModelData'), message: loadError('DeleteModelData on Person: skipErrors must be true or false, not "yes"') },
  ],
  [
    "overwrite 'yes'",
    { files: bad("new AddFieldData('Person', 'x', { default: 1, overwrite: 'yes' as never })"), message: loadError('AddFieldData on Person: overwrite must be true or false, not "yes"') },
  ],
  [
    "CopyFieldData overwrite 'yes'",
    { files: bad("new CopyFieldData('Person', 'a', 'b', { overwrite: 'yes' as never })", 'CopyFieldData'), message: loadError('CopyFieldData on Person: overwrite must be true or false') },
  ],
  [
    'overwriteExisting 1',
    {
      files: bad("new CopyModelData('Person', 'People', { overwriteExisting: 1 as never })", 'CopyModelData'),
      message: loadError('CopyModelData on Person: overwriteExisting must be true or false, not 1'),
    },
  ],
  ["indexed 'no'", { files: bad("new AddFieldData('Person', 'x', { default: 1, indexed: 'no' as never })"), message: loadError('AddFieldData on Person: indexed must be true or false, not "no"') }],
  [
    'a filter that is a string',
    {
      files: bad("new DeleteModelData('Person', { filter: 'status' as never })", 'DeleteModelData'),
      message: loadError('DeleteModelData on Person: filter must be an object of equalities or a list of \\{property, op, value\\}'),
    },
  ],
  [
    'a filter without a value',
    {
      files: bad("new DeleteModelData('Person', { filter: { property: 'status', op: '=' } as never })", 'DeleteModelData'),
      message: loadError('DeleteModelData on Person: filter \\{.*\\} must be \\{property, op, value\\}, all three'),
    },
  ],
  [
    'a filter list entry without an op',
    {
      files: bad("new DeleteModelData('Person', { filter: [{ property: 'status', value: 1 }] as never })", 'DeleteModelData'),
      message: loadError('DeleteModelData on Person: filter\\[0\\] must be \\{property, op, value\\}'),
    },
  ],
  [
    'a filter with an unknown operator',
    {
      files: bad("new DeleteModelData('Person', { filter: { property: 'status', op: '~' as never, value: 1 } })", 'DeleteModelData'),
      message: loadError('DeleteModelData on Person: filter on status has an unknown operator "~"'),
    },
  ],
  [
    'an IN filter without a list',
    {
      files: bad("new DeleteModelData('Person', { filter: { property: 'status', op: 'IN', value: 'a' } })", 'DeleteModelData'),
      message: loadError('DeleteModelData on Person: filter on status: IN needs a non-empty list'),
    },
  ],
  [
    'a filter on an embedded property',
    {
      files: bad("new DeleteModelData('Person', { filter: { 'address.city': 'Paris' } })", 'DeleteModelData'),
      message: loadError('DeleteModelData on Person: filter on "address.city": Datastore filters on embedded properties only through its index'),
    },
  ],
  [
    'an invalid namespace option',
    {
      files: bad("new DeleteModelData('Person', { namespace: ['', 'tenant b'] })", 'DeleteModelData'),
      message: loadError('DeleteModelData on Person: namespace "tenant b" holds characters other than letters'),
    },
  ],
  [
    'a reserved namespace option',
    { files: bad("new DeleteModelData('Person', { namespace: '__system__' })", 'DeleteModelData'), message: loadError('DeleteModelData on Person: namespace "__system__" is reserved') },
  ],
  [
    'an invalid toNamespace',
    {
      files: bad("new CopyModelDataToNamespace('Person', 'tenant/b')", 'CopyModelDataToNamespace'),
      message: loadError('CopyModelDataToNamespace on Person has a toNamespace that Datastore refuses: "tenant/b" holds characters'),
    },
  ],
  [
    'a _dsmigrate_ kind as source',
    {
      files: bad("new DeleteModelData('_dsmigrate_migration')", 'DeleteModelData'),
      message: loadError('DeleteModelData cannot take _dsmigrate_migration as its kind: kinds starting with _dsmigrate_ belong to datastore-migrate itself'),
    },
  ],
  [
    'a _dsmigrate_ kind as copy target',
    { files: bad("new CopyModelData('Person', '_dsmigrate_lock')", 'CopyModelData'), message: loadError('CopyModelData cannot take _dsmigrate_lock as its target kind') },
  ],
  [
    'a _dsmigrate_ kind as toKind',
    {
      files: bad("new CopyModelDataToNamespace('Person', 'archive', { toKind: '_dsmigrate_shard' })", 'CopyModelDataToNamespace'),
      message: loadError('CopyModelDataToNamespace cannot take _dsmigrate_shard as its target kind'),
    },
  ],
  [
    'a map function that is not a function',
    { files: bad("new MapFunctionOnEntities('Person', 'fn' as never)", 'MapFunctionOnEntities'), message: loadError('MapFunctionOnEntities on Person needs a function') },
  ],
  [
    'a migration with no operations',
    {
      files: { ...GOOD, 'migrations/0002_bad.ts': "import { defineMigration } from 'datastore-migrate';\nexport default defineMigration({ operations: [] });\n" },
      message: /0002_bad\.ts has no operations: add at least one to its operations list/,
    },
  ],
];

async function snapshot(store: Datastore): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for await (const e of store.query({ kind: 'Person' })) out[e.key.toString()] = { ...e.toObject(), indexed: e.names().map((n) => e.isIndexed(n)) };
  return out;
}

async function controlEntities(store: Datastore): Promise<string[]> {
  const found: string[] = [];
  for (const kind of CONTROL) for await (const e of store.query({ kind })) found.push(e.key.toString());
  return found;
}

describe('bad CLI and config input exits 2, naming the flag or option, and changes nothing', () => {
  let store: Datastore;
  let before: Record<string, unknown>;
  beforeAll(async () => {
    store = await Datastore.connect({ emulatorHost: host, projectId });
    await store.save(Array.from({ length: PEOPLE }, (_, i) => Entity.from(Key.of('Person', i + 1), { name: `p${i}`, status: i % 2 ? 'active' : 'gone', address: { city: i % 3 ? 'Paris' : 'Oslo' } })));
    before = await snapshot(store);
  });
  afterAll(async () => {
    await store.close();
  });

  it.each(rows)('%s', async (_name, row) => {
    const app = tempApp(row.files ?? GOOD);
    const result = await runCli(row.args ?? ['migrate'], { cwd: app, env: env() });
    // Code and stderr together, so that a failure shows what the CLI said.
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 2, stderr: expect.stringMatching(row.message) as string });
    expect(result.stderr).not.toMatch(/\n\s+at /); // a message, not a stack trace
    expect(await snapshot(store)).toEqual(before);
    expect(await controlEntities(store)).toEqual([]);
  });

  it('the same refusals come as JSON with --json', async () => {
    const app = tempApp(GOOD);
    const result = await runCli(['migrate', '--json', '--control-namespace', 'bad name'], { cwd: app, env: env() });
    expect(result.code).toBe(2);
    expect(JSON.parse(result.stdout.trim())).toMatchObject({ code: 'BAD_INPUT', error: expect.stringContaining('--control-namespace') });
  });
});

describe('dsmigrate plan', () => {
  it('lists what migrate would run, writing nothing, and refuses a bad migration file with exit 2', async () => {
    const store = await Datastore.connect({ emulatorHost: host, projectId: uniqueProject('plan') });
    const e = { ...env(), DATASTORE_PROJECT_ID: store.projectId, GOOGLE_CLOUD_PROJECT: store.projectId };
    try {
      await store.save([Entity.from(Key.of('Person', 1), { name: 'a' })]);
      const app = tempApp(GOOD);
      const result = await runCli(['plan', '--json'], { cwd: app, env: e });
      expect(result.code).toBe(0);
      const [step] = JSON.parse(result.stdout.trim()) as { id: string; direction: string; operations: { description: string }[] }[];
      expect(step).toMatchObject({ id: 'default:0001_colour', direction: 'forward', operations: [{ description: 'Set Person.colour to "blue" where missing' }] });
      expect((await store.get(Key.of('Person', 1)))?.has('colour')).toBe(false);

      const refused = await runCli(['plan'], { cwd: tempApp(bad("new AddFieldData('Person', 'x', { default: 1, batchSize: 600 })")), env: e });
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(loadError('AddFieldData on Person: batchSize must be'));
    } finally {
      await store.close();
    }
  });
});

describe('dsmigrate introspect', () => {
  it("describes a kind's properties, and refuses --sample 0 naming the flag", async () => {
    const store = await Datastore.connect({ emulatorHost: host, projectId: uniqueProject('intro') });
    const e = { ...env(), DATASTORE_PROJECT_ID: store.projectId, GOOGLE_CLOUD_PROJECT: store.projectId };
    try {
      await store.save([Entity.from(Key.of('Person', 1), { name: 'a', bio: 'long' }, { excludeFromIndexes: ['bio'] }), Entity.from(Key.of('Person', 2), { name: 'b' })]);
      const result = await runCli(['introspect', 'Person', '--json'], { cwd: tempApp({}), env: e });
      expect(result.code).toBe(0);
      const [shape] = JSON.parse(result.stdout.trim()) as { kind: string; sampled: number; properties: { name: string; present: number; unindexed: number }[] }[];
      expect(shape).toMatchObject({ kind: 'Person', sampled: 2 });
      expect(shape.properties).toEqual(
        expect.arrayContaining([expect.objectContaining({ name: 'name', present: 2, unindexed: 0 }), expect.objectContaining({ name: 'bio', present: 1, unindexed: 1 })]),
      );
      const refused = await runCli(['introspect', 'Person', '--sample', '0'], { cwd: tempApp({}), env: e });
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(/--sample must be a whole number of at least 1, not 0/);
    } finally {
      await store.close();
    }
  });
});

describe('dsmigrate unlock', () => {
  it('breaks a held lock, naming its holder, then says it was not held; a bad --control-namespace is refused', async () => {
    const store = await Datastore.connect({ emulatorHost: host, projectId: uniqueProject('unlock') });
    const e = { ...env(), DATASTORE_PROJECT_ID: store.projectId, GOOGLE_CLOUD_PROJECT: store.projectId };
    try {
      await new Lease(store, 'ops', 'dead-host:123:abc', 60_000).acquire('migrate');
      const broken = await runCli(['unlock', '--control-namespace', 'ops'], { cwd: tempApp({}), env: e });
      expect(broken.code).toBe(0);
      expect(broken.stdout).toMatch(/^Broke the lock held by dead-host:123:abc \(migrate\) since /);
      expect(await Lease.holder(store, 'ops')).toBeUndefined();

      const again = await runCli(['unlock', '--control-namespace', 'ops', '--json'], { cwd: tempApp({}), env: e });
      expect(again.code).toBe(0);
      expect(JSON.parse(again.stdout.trim())).toEqual({ unlocked: null, run: null });

      const refused = await runCli(['unlock', '--control-namespace', 'ops!'], { cwd: tempApp({}), env: e });
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(/--control-namespace: "ops!" holds characters/);
    } finally {
      await store.close();
    }
  });
});
