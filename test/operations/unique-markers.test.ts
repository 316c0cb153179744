import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Entity, Key, type Datastore } from '../../src/datastore';
import { LocalExecutor } from '../../src/executors';
import { defineModel, field, UNIQUE_MARKER_KIND } from '../../src/model';
import {
  AddFieldData,
  BuildUniqueMarkers,
  CopyFieldData,
  CopyModelData,
  CopyModelDataToNamespace,
  DeleteModelData,
  MapFunctionOnEntities,
  RemoveFieldData,
  type Operation,
} from '../../src/operations';
import { runCli, tempApp } from '../support/cli';
import { describeEachFlavour, uniqueProject } from '../support/emulators';

const Member = defineModel('Member', { email: field.string({ unique: true }), name: field.string() });
defineModel('Ticket', { code: field.string({ unique: true }) });
defineModel('MemberCopy', { email: field.string({ unique: true }), name: field.string() });

/**
 * Checks the markers of `kind.field` against the data with a scan: every entity holding a value owns its
 * marker, and every marker is owned by an entity that holds its value. Returns the number of markers.
 */
async function checkMarkers(store: Datastore, kind: string, property = 'email', namespace = ''): Promise<number> {
  const holders = new Map<string, string>();
  for await (const e of store.query({ kind, namespace })) {
    const value = e.get(property);
    if (typeof value === 'string') holders.set(e.key.toString(), value);
  }
  const markers: { owner: string; name: string }[] = [];
  for await (const m of store.query({ kind: UNIQUE_MARKER_KIND, namespace }))
    if (m.get('kind') === kind && m.get('field') === property) markers.push({ owner: String(m.get('owner')), name: m.key.name! });
  for (const { owner, name } of markers)
    expect({ name, heldBy: owner, value: holders.get(owner) !== undefined && name.endsWith(`|s:${holders.get(owner)!}`) }).toEqual({ name, heldBy: owner, value: true });
  expect(markers).toHaveLength(holders.size);
  return markers.length;
}

const run = (store: Datastore, operation: Operation, id: string) => new LocalExecutor({ concurrency: 2 }).runOperation({ store, job: { namespace: '', id }, operation, migration: id });

describeEachFlavour('operations keep unique markers consistent', (ctx) => {
  async function fresh(n = 60): Promise<Datastore> {
    const store = await ctx.connect({ projectId: uniqueProject('u') });
    for (let i = 0; i < n; i += 20) {
      await Promise.all(Array.from({ length: Math.min(20, n - i) }, (_, j) => Member.save(store, Member.create(Member.key(i + j + 1), { email: `m${i + j}@x.org`, name: `n${i + j}` }))));
    }
    expect(await checkMarkers(store, 'Member')).toBe(n);
    return store;
  }

  it('moves markers with a map that changes values, and back with its reverse', async () => {
    const store = await fresh();
    const rename = new MapFunctionOnEntities('Member', (e) => void e.set('email', `new-${String(e.get('email'))}`), {
      reverse: (e) => void e.set('email', String(e.get('email')).replace(/^new-/, '')),
      batchSize: 25,
    });
    await run(store, rename, 'map#0.0');
    expect(await checkMarkers(store, 'Member')).toBe(60);
    await run(store, rename.reverse(), 'map#0.1');
    expect(await checkMarkers(store, 'Member')).toBe(60);
    // The old values are free again, and taken ones are refused.
    await expect(Member.save(store, Member.create(Member.key(999), { email: 'm3@x.org', name: 'dup' }))).rejects.toMatchObject({ code: 'UNIQUE_VIOLATION' });
  });

  it('drops markers when the field or the entities are removed', async () => {
    const store = await fresh();
    await run(store, new RemoveFieldData('Member', 'email', { batchSize: 25 }), 'rm#0.0');
    expect(await checkMarkers(store, 'Member')).toBe(0);

    const other = await fresh(30);
    await run(other, new DeleteModelData('Member', { batchSize: 25 }), 'del#0.0');
    expect(await checkMarkers(other, 'Member')).toBe(0);
  });

  it('creates markers for copies into a kind with the field unique, undone by the reverse; a duplicate fails the batch', async () => {
    const store = await fresh(40);
    const copy = new CopyModelData('Member', 'MemberCopy', { batchSize: 20 });
    await run(store, copy, 'copy#0.0');
    expect(await checkMarkers(store, 'MemberCopy')).toBe(40);
    await run(store, copy.reverse(), 'copy#0.1');
    expect(await checkMarkers(store, 'MemberCopy')).toBe(0);

    // A MemberCopy that already holds a value a copy would take.
    await store.save([Entity.from(Key.of('MemberCopy', 'squatter'), { email: 'm5@x.org', name: 'squatter' })]);
    await store.transaction(async (tx) => {
      tx.upsert(Entity.from(Key.of(UNIQUE_MARKER_KIND, 'MemberCopy|email|s:m5@x.org'), { kind: 'MemberCopy', field: 'email', owner: Key.of('MemberCopy', 'squatter') }));
    });
    await expect(run(store, new CopyModelData('Member', 'MemberCopy', { batchSize: 20 }), 'copy#0.2')).rejects.toMatchObject({
      code: 'UNIQUE_VIOLATION',
      message: expect.stringContaining('m5@x.org'),
    });
  });

  it('claims markers for values AddFieldData and CopyFieldData write, and for copies into another namespace', async () => {
    const store = await ctx.connect({ projectId: uniqueProject('a') });
    await store.save(Array.from({ length: 30 }, (_, i) => Entity.from(Key.of('Ticket', i + 1), { n: i })));
    await run(store, new AddFieldData('Ticket', 'code', { default: (e) => `T-${String(e.key.id)}`, batchSize: 10 }), 'add#0.0');
    expect(await checkMarkers(store, 'Ticket', 'code')).toBe(30);
    // A constant default for a unique field: the second entity to take it fails the batch.
    await store.save([Entity.from(Key.of('Ticket', 100), {}), Entity.from(Key.of('Ticket', 101), {})]);
    await expect(run(store, new AddFieldData('Ticket', 'code', { default: 'SAME', batchSize: 10 }), 'add#1.0')).rejects.toMatchObject({ code: 'UNIQUE_VIOLATION' });
    expect(await checkMarkers(store, 'Ticket', 'code')).toBe(30);

    await store.save(Array.from({ length: 25 }, (_, i) => Entity.from(Key.of('Member', i + 1), { legacyEmail: `l${i}@x.org`, name: `n${i}` })));
    await run(store, new CopyFieldData('Member', 'legacyEmail', 'email', { batchSize: 10 }), 'copyfield#0.0');
    expect(await checkMarkers(store, 'Member')).toBe(25);
    await run(store, new CopyModelDataToNamespace('Member', 'elsewhere', { batchSize: 10 }), 'ns#0.0');
    expect(await checkMarkers(store, 'Member', 'email', 'elsewhere')).toBe(25);
    expect(await checkMarkers(store, 'Member')).toBe(25);
  });

  it('BuildUniqueMarkers reports exactly the planted duplicate groups, then marks the rest with skipErrors', async () => {
    const store = await ctx.connect({ projectId: uniqueProject('b') });
    const N = 5000;
    const planted: Record<number, string> = { 100: 'dup-a', 2000: 'dup-a', 301: 'dup-b', 302: 'dup-b', 4999: 'dup-b', 7: 'dup-c', 8: 'dup-c' };
    const entities = Array.from({ length: N }, (_, i) => Entity.from(Key.of('Legacy', i + 1), { email: planted[i] ?? `l${i}@x.org` }));
    for (let i = 0; i < N; i += 500) await store.save(entities.slice(i, i + 500));
    const build = new BuildUniqueMarkers('Legacy', 'email');
    await expect(build.validate(store)).rejects.toMatchObject({ code: 'BAD_INPUT', context: { duplicateGroups: 3 } });
    const groups = await build.duplicateGroups(store);
    expect(groups.map((g) => [g.value, g.keys.sort()])).toEqual(
      [
        ['dup-a', ['Legacy:101', 'Legacy:2001']],
        ['dup-b', ['Legacy:302', 'Legacy:303', 'Legacy:5000']],
        ['dup-c', ['Legacy:8', 'Legacy:9']],
      ].map(([v, k]) => [v, (k as string[]).sort()]),
    );
    expect(await checkMarkersCount(store, 'Legacy')).toBe(0);

    const skipping = new BuildUniqueMarkers('Legacy', 'email', { skipErrors: true });
    await skipping.validate(store);
    const result = await run(store, skipping, 'build#0.0');
    expect(result.changed).toBe(N - 4);
    expect(result.warnings.join(' ')).toMatch(/4 entities/);
    expect(await checkMarkersCount(store, 'Legacy')).toBe(N - 4);
  });

  it('stays consistent after a SIGKILL in the middle and a resume', async () => {
    const projectId = uniqueProject('k');
    const store = await ctx.connect({ projectId });
    const env = { ...ctx.env(), DATASTORE_PROJECT_ID: projectId, GOOGLE_CLOUD_PROJECT: projectId };
    const app = tempApp({
      'models.ts': `import { defineModel, field } from 'datastore-migrate';\nexport const Member = defineModel('Member', { email: field.string({ unique: true }), name: field.string() });\n`,
      'migrations/0001_emails.ts': `
import { defineMigration, MapFunctionOnEntities } from 'datastore-migrate';
import '../models';
export default defineMigration({ operations: [new MapFunctionOnEntities('Member', (e) => void e.set('email', 'k-' + String(e.get('email'))), { batchSize: 10, shardCount: 1 })] });
`,
      'dsmigrate.config.json': JSON.stringify({ lockTtlSeconds: 2 }),
    });
    for (let i = 0; i < 80; i += 20) await Promise.all(Array.from({ length: 20 }, (_, j) => Member.save(store, Member.create(Member.key(i + j + 1), { email: `m${i + j}@x.org`, name: 'n' }))));
    const pause = path.join(mkdtempSync(path.join(tmpdir(), 'dsm-pause-')), 'paused');
    let kill: () => void = () => undefined;
    const first = runCli(['migrate', '--concurrency', '1'], { cwd: app, env: { ...env, DSMIGRATE_TEST_PAUSE_AFTER_BATCHES: '3', DSMIGRATE_TEST_PAUSE_FILE: pause }, onSpawn: (k) => (kill = k) });
    for (const until = Date.now() + 90_000; !existsSync(pause); await sleep(50)) if (Date.now() > until) throw new Error('no pause');
    kill();
    await first;
    expect(await checkMarkers(store, 'Member')).toBe(80);
    expect((await runCli(['migrate', '--wait-lock', '30'], { cwd: app, env })).code).toBe(0);
    expect(await checkMarkers(store, 'Member')).toBe(80);
    let prefixed = 0;
    for await (const e of store.query({ kind: 'Member' })) if (/^k-m\d+@x\.org$/.test(String(e.get('email')))) prefixed++;
    expect(prefixed).toBe(80);
  });
});

async function checkMarkersCount(store: Datastore, kind: string): Promise<number> {
  let n = 0;
  for await (const m of store.query({ kind: UNIQUE_MARKER_KIND })) if (m.get('kind') === kind) n++;
  return n;
}
