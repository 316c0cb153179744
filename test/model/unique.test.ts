import { Entity, GeoPoint, Key, type Datastore } from '../../src/datastore';
import { DsMigrateError } from '../../src/errors';
import { defineModel, field, UNIQUE_MARKER_KIND } from '../../src/model';
import { describeEachFlavour } from '../support/emulators';
import { Account } from './support/account-model';
import { SaverProcess } from './support/saver-process';
import { saveOne, type SaveOutcome } from './support/unique-saver';

describe('unique fields: bad definitions', () => {
  it('refuses unique on types that have no single comparable value, naming the kind and field', () => {
    for (const spec of [field.array(field.string(), { unique: true }), field.blob({ unique: true }), field.entity({ unique: true }), field.json({ unique: true })]) {
      let error: unknown;
      try {
        defineModel('Profile', { avatar: spec });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(DsMigrateError);
      expect(error).toMatchObject({ code: 'MODEL_DEFINITION', context: { kind: 'Profile', field: 'avatar' } });
      expect((error as Error).message).toBe(`Model Profile: field "avatar" is ${spec.type}, which cannot be unique; unique fields are string, integer, double, boolean, timestamp, key, geoPoint.`);
    }
    expect(() => defineModel('Profile', { tags: field.array(field.string({ unique: true })) })).toThrow(/field "tags" sets unique or renamedFrom on its element type/);
  });

  it('refuses more unique fields than fit in one transaction with their markers', () => {
    const fields = Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`u${i}`, field.string({ unique: true })]));
    expect(() => defineModel('Wide', fields)).toThrow('Model Wide has 9 unique fields; at most 8 fit in one transaction with their markers.');
  });
});

describeEachFlavour('unique fields', (ctx) => {
  let store: Datastore;
  beforeAll(async () => {
    store = await ctx.connect();
  });

  async function markers(namespace: string): Promise<{ name: string; owner: string }[]> {
    const out: { name: string; owner: string }[] = [];
    for await (const marker of store.query({ kind: UNIQUE_MARKER_KIND, namespace })) out.push({ name: marker.key.name!, owner: String(marker.get('owner')) });
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Runs the saves at once: the first `inChildren` split between two child processes, the rest in this one. */
  async function concurrently(namespace: string, saves: { id: string; email: string }[], inChildren: number): Promise<SaveOutcome[]> {
    const half = Math.ceil(inChildren / 2);
    const children = await Promise.all([saves.slice(0, half), saves.slice(half, inChildren)].map((part) => SaverProcess.start(ctx.env(), namespace, part)));
    const outcomes = await Promise.all([...children.map((c) => c.go()), ...saves.slice(inChildren).map(({ id, email }) => saveOne(store, namespace, id, email).then((o) => [o]))]);
    return outcomes.flat();
  }

  it('lets exactly one of 10 concurrent saves of one value under different keys win, from three processes', async () => {
    const namespace = 'race';
    const saves = Array.from({ length: 10 }, (_, i) => ({ id: `a${i}`, email: 'same@example.com' }));
    const outcomes = await concurrently(namespace, saves, 4);
    expect(outcomes).toHaveLength(10);
    const winners = outcomes.filter((o) => o.code === 'ok');
    expect(winners).toHaveLength(1);
    expect(outcomes.filter((o) => o.code === 'UNIQUE_VIOLATION')).toHaveLength(9);

    const stored = await Account.query(store, { namespace });
    expect(stored.map((a) => a.key.name)).toEqual([winners[0].id]);
    const [marker] = await markers(namespace);
    expect(await markers(namespace)).toHaveLength(1);
    expect(marker).toEqual({ name: 'Account|email|s:same@example.com', owner: Account.key(winners[0].id, { namespace }).toString() });
  });

  it('leaves exactly one marker, for the final value, after 10 concurrent changes of one entity', async () => {
    const namespace = 'changes';
    await Account.save(store, Account.create(Account.key('one', { namespace }), { email: 'start@example.com' }));
    const saves = Array.from({ length: 10 }, (_, i) => ({ id: 'one', email: `v${i}@example.com` }));
    const outcomes = await concurrently(namespace, saves, 4);
    expect(outcomes.map((o) => o.code)).toEqual(Array(10).fill('ok'));

    const final = (await Account.get(store, 'one', { namespace }))!.values.email;
    expect(saves.map((s) => s.email)).toContain(final);
    expect(await markers(namespace)).toEqual([{ name: `Account|email|s:${final}`, owner: Account.key('one', { namespace }).toString() }]);
  });

  it('names the kind, field, value and holder; moves the marker on change and removes it on delete', async () => {
    const namespace = 'moves';
    const key = (id: string) => Account.key(id, { namespace });
    await Account.save(store, Account.create(key('x'), { email: 'x@example.com', handle: 'ex' }));
    const refused = Account.save(store, Account.create(key('y'), { email: 'x@example.com' }));
    await expect(refused).rejects.toThrow(`Account.email is unique: the value "x@example.com" is already held by [moves]Account:"x", so [moves]Account:"y" cannot take it.`);
    await expect(refused).rejects.toMatchObject({
      code: 'UNIQUE_VIOLATION',
      exitCode: 1,
      context: { kind: 'Account', field: 'email', value: 'x@example.com', key: '[moves]Account:"y"', heldBy: '[moves]Account:"x"' },
    });
    expect(await Account.get(store, 'y', { namespace })).toBeUndefined();

    const x = (await Account.get(store, 'x', { namespace }))!;
    x.values.email = 'x2@example.com';
    // A value set to null drops its marker (the model's types do not carry `nullable` through the builder).
    (x.values as { handle: string | null }).handle = null;
    await Account.save(store, x);
    expect(await markers(namespace)).toEqual([{ name: 'Account|email|s:x2@example.com', owner: key('x').toString() }]);
    // The old value is free again.
    await Account.save(store, Account.create(key('y'), { email: 'x@example.com' }));

    await Account.delete(store, ['x', 'y'], { namespace });
    expect(await markers(namespace)).toEqual([]);
    expect(await Account.query(store, { namespace })).toEqual([]);
  });

  it('does not mark nulls or missing values, and keeps values apart by namespace', async () => {
    await Account.save(store, [
      Account.create(Account.key('n1', { namespace: 'nulls' }), { email: 'n1@example.com' }),
      Account.create(Account.key('n2', { namespace: 'nulls' }), { email: 'n2@example.com' }),
    ]);
    expect((await markers('nulls')).map((m) => m.name)).toEqual(['Account|email|s:n1@example.com', 'Account|email|s:n2@example.com']);
    await Account.save(store, Account.create(Account.key('n1', { namespace: 'nulls-b' }), { email: 'n1@example.com' }));
    expect((await markers('nulls-b')).map((m) => m.owner)).toEqual([Account.key('n1', { namespace: 'nulls-b' }).toString()]);
  });

  it('tells 1 from "1" and from 1.0, merges the number 1 with the bigint 1n, and hashes long values', async () => {
    const namespace = 'types';
    const IntCode = defineModel('Code', { v: field.integer({ unique: true }) }, { namespace });
    const StringCode = defineModel('Code', { v: field.string({ unique: true }) }, { namespace });
    const DoubleCode = defineModel('Code', { v: field.double({ unique: true }) }, { namespace });
    await IntCode.save(store, IntCode.create('i', { v: 1 }));
    await StringCode.save(store, StringCode.create('s', { v: '1' }));
    await DoubleCode.save(store, DoubleCode.create('d', { v: 1 }));
    await expect(IntCode.save(store, IntCode.create('i2', { v: 1n }))).rejects.toMatchObject({ code: 'UNIQUE_VIOLATION', context: { heldBy: '[types]Code:"i"' } });
    expect((await markers(namespace)).map((m) => m.name)).toEqual(['Code|v|d:1', 'Code|v|i:1', 'Code|v|s:1']);

    const long = 'x'.repeat(1000);
    await StringCode.save(store, StringCode.create('long', { v: long }));
    await expect(StringCode.save(store, StringCode.create('long2', { v: long }))).rejects.toMatchObject({ code: 'UNIQUE_VIOLATION', context: { heldBy: '[types]Code:"long"' } });
    const hashed = (await markers(namespace)).find((m) => m.owner === '[types]Code:"long"')!;
    expect(hashed.name).toMatch(/^Code\|v\|s#[0-9a-f]{64}$/);
  });

  it('reads the same value back from a stored holder for every unique type, so a second holder is refused', async () => {
    const namespace = 'scalars';
    const values = {
      at: new Date('2024-05-06T07:08:09.123Z'),
      ref: Key.of('Team', 'red', { namespace: 'other' }),
      where: new GeoPoint(51.5, -0.12),
      flag: true,
      ratio: 0.25,
    };
    const Thing = defineModel(
      'Thing',
      {
        at: field.timestamp({ unique: true }),
        ref: field.key({ unique: true }),
        where: field.geoPoint({ unique: true }),
        flag: field.boolean({ unique: true }),
        ratio: field.double({ unique: true }),
      },
      { namespace },
    );
    await Thing.save(store, Thing.create('first', values));
    expect((await markers(namespace)).map((m) => m.name)).toEqual([
      'Thing|at|t:1714979289.123000000',
      'Thing|flag|b:true',
      'Thing|ratio|d:0.25',
      'Thing|ref|k:[other]Team:"red"',
      'Thing|where|g:51.5,-0.12',
    ]);
    for (const name of Object.keys(values) as (keyof typeof values)[]) {
      const others = { at: new Date(0), ref: Key.of('Team', 'blue'), where: new GeoPoint(0, 0), flag: false, ratio: 0.5 };
      await expect(Thing.save(store, Thing.create('second', { ...others, [name]: values[name] }))).rejects.toMatchObject({
        code: 'UNIQUE_VIOLATION',
        context: { field: name, heldBy: '[scalars]Thing:"first"' },
      });
    }
    // Re-saving the holder unchanged keeps its markers.
    await Thing.save(store, (await Thing.get(store, 'first'))!);
    expect(await markers(namespace)).toHaveLength(5);
  });

  it('takes over a marker whose owner no longer holds the value (writes that bypassed the model)', async () => {
    const namespace = 'stale';
    const key = (id: string) => Account.key(id, { namespace });
    await Account.save(store, [Account.create(key('gone'), { email: 'deleted@example.com' }), Account.create(key('moved'), { email: 'moved@example.com' })]);
    await store.delete([key('gone')]);
    await store.save([Entity.from(key('moved'), { email: 'elsewhere@example.com', handle: null })]);
    await Account.save(store, [Account.create(key('new1'), { email: 'deleted@example.com' }), Account.create(key('new2'), { email: 'moved@example.com' })]);
    expect(await markers(namespace)).toEqual([
      { name: 'Account|email|s:deleted@example.com', owner: key('new1').toString() },
      { name: 'Account|email|s:moved@example.com', owner: key('new2').toString() },
    ]);
  });
});
