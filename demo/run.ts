/**
 * `npm run demo`: the product in two minutes. Starts a Firestore-mode Datastore emulator (or uses
 * DATASTORE_EMULATOR_HOST), seeds an app's data in its old shape, shows a model applying a new field's
 * default on load, runs `dsmigrate migrate` on ./migrations (Djangae's migration playbooks, see docs/operations.md), prints
 * `dsmigrate status`, and stops the emulator. Running it again is safe: seeding is skipped and
 * nothing is left to migrate.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { startDatastoreEmulator, type EmulatorFlavour } from '../emulator/datastore-emulator';
import { Datastore, Entity, Key } from '../src';
import { Person } from './models';

const PROJECT = 'dsmigrate-demo';
const PEOPLE = 3000;
const ROOT = path.resolve(__dirname, '..');

function say(text: string): void {
  process.stdout.write(`\n\x1b[1m== ${text}\x1b[0m\n`);
}

async function seed(store: Datastore): Promise<boolean> {
  if (await store.get(Key.of('Person', 1))) return false;
  const companyNames = ['acme', 'globex', 'initech'];
  const companies = companyNames.map((name) => Entity.from(Key.of('Company', name), { name: name.toUpperCase() }));
  const people: Entity[] = [];
  for (let i = 1; i <= PEOPLE; i++) {
    // A third each: integer ids, names, and children of a company, as real apps mix them.
    const key = i % 3 === 0 ? Key.of('Company', companyNames[i % companyNames.length], 'Person', i) : i % 3 === 1 ? Key.of('Person', i) : Key.of('Person', `user-${i}`);
    const values: Record<string, string | number> = { name: `Person ${i}`, email: `Person.${i}@Example.COM`, nickname: `p${i}`, visits: i % 7 };
    if (i % 10 === 0) values.colour = 'green'; // written by new code already: AddFieldData must keep it
    people.push(Entity.from(key, { ...values, bio: 'x'.repeat(600) }, { excludeFromIndexes: ['bio'] }));
  }
  const logs = Array.from({ length: 500 }, (_, i) => Entity.from(Key.of('LegacyLog', i + 1), { line: `log ${i}` }));
  await store.save([...companies, ...people, ...logs]);
  return true;
}

function dsmigrate(args: string[], env: NodeJS.ProcessEnv): number {
  const result = spawnSync(process.execPath, ['--require', require.resolve('tsx/cjs'), path.join(ROOT, 'src/cli/main.ts'), ...args], { cwd: ROOT, env, stdio: 'inherit' });
  return result.status ?? 1;
}

async function main(): Promise<void> {
  const flavour = (process.env.DSM_DEMO_FLAVOUR ?? 'firestore') as EmulatorFlavour;
  const external = process.env.DATASTORE_EMULATOR_HOST || undefined;
  const emulator = external ? undefined : await startDatastoreEmulator({ flavour });
  const host = external ?? emulator!.host;
  const env = { ...process.env, DATASTORE_EMULATOR_HOST: host, DATASTORE_PROJECT_ID: PROJECT };
  say(`Datastore emulator (${emulator ? flavour : 'yours'}) at ${host}, project ${PROJECT}`);
  const store = await Datastore.connect({ emulatorHost: host, projectId: PROJECT });
  try {
    say(`Seeding ${PEOPLE} Person entities of the old shape (no colour, a nickname, mixed-case emails)`);
    process.stdout.write((await seed(store)) ? 'seeded\n' : 'already seeded: skipping\n');

    say('Reading through the new model: defaults apply on load, nothing is written');
    const sample = await Person.getMany(store, [1, 'user-2', 10]);
    for (const p of sample) if (p) process.stdout.write(`${p.key}: colour=${p.values.colour} (stored: ${p.entity.has('colour') ? 'yes' : 'no'})\n`);

    say('dsmigrate plan');
    dsmigrate(['plan'], env);
    say('dsmigrate migrate');
    const code = dsmigrate(['migrate'], env);
    if (code !== 0) throw new Error(`dsmigrate migrate exited ${code}`);
    say('dsmigrate status');
    dsmigrate(['status'], env);
    say("dsmigrate verify: every operation's postcondition, checked on the data as it is now");
    if (dsmigrate(['verify'], env) !== 0) throw new Error('dsmigrate verify found entities the migrations missed');

    say('After');
    const after = (await Person.get(store, 'user-2'))!;
    process.stdout.write(
      `${after.key}: ${JSON.stringify({ colour: after.values.colour, email: after.values.email, displayName: after.values.displayName, nickname: after.entity.get('nickname') ?? '(removed)' })}\n`,
    );
    for (const [kind, namespace] of [
      ['Person', ''],
      ['PersonArchive', ''],
      ['Person', 'tenant-b'],
      ['LegacyLog', ''],
    ] as const) {
      let n = 0;
      for await (const batch of store.keys({ kind, namespace })) n += batch.length;
      process.stdout.write(`${kind}${namespace ? ` [${namespace}]` : ''}: ${n} entities\n`);
    }
  } finally {
    await store.close();
    await emulator?.stop();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`demo failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
