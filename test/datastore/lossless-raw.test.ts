import type { google } from '@google-cloud/datastore/build/protos/protos';
import { Key } from '../../src/datastore';
import { LocalExecutor } from '../../src/executors';
import { AddFieldData, type Operation } from '../../src/operations';
import { describeEachFlavour, uniqueProject, type FlavourContext } from '../support/emulators';
import { rawClient } from '../support/raw-client';
import { normalise, rawSeed, SEED } from '../support/raw-entities';

type RawEntity = google.datastore.v1.IEntity;

/*
 * Seeded by the official client, never by our codec (test/support/raw-entities.ts): test/datastore/lossless.test.ts
 * and test/operations/lossless-operations.test.ts seed through the codec they check, so a codec that drops a
 * nested flag loses it on the way in as well as on the way out, and their before/after comparison agrees.
 */
const N = 5;

/**
 * The shared fixture less its array and key values: compared here with the literal values, and the classic
 * emulator gives back an array of indexed and unindexed values in another order (test/undo compares stored
 * snapshots instead).
 */
const { list: _list, ref: _ref, ...LITERAL } = SEED;

async function rawLookup(ctx: FlavourContext, projectId: string, keys: Key[]): Promise<RawEntity[]> {
  const client = rawClient(ctx.host, projectId);
  try {
    const [response]: [google.datastore.v1.ILookupResponse] = await client.lookup({ projectId, keys: keys.map((k) => k.toProto(projectId)) });
    const byId = new Map((response.found ?? []).map(({ entity }) => [String(entity!.key!.path!.at(-1)!.id), entity!]));
    return keys.map((k) => byId.get(String(k.path.at(-1)!.id))!);
  } finally {
    await client.close();
  }
}

describeEachFlavour('lossless rewrite of entities seeded by another client', (ctx) => {
  // A constant default reads under a property mask where the backend honours one; a default computed from the
  // entity reads and writes it whole, which is the path that re-sends every untouched property through the codec.
  const cases: [string, (kind: string) => Operation][] = [
    ['a constant default (property mask where honoured)', (kind) => new AddFieldData(kind, 'x', { default: 1 })],
    ['a default computed from the entity (whole entity)', (kind) => new AddFieldData(kind, 'x', { default: (e) => (e.has('keep') ? 1 : 0) })],
  ];

  it.each(cases)('AddFieldData with %s leaves every other property exactly as seeded', async (_, make) => {
    const projectId = uniqueProject('r');
    const store = await ctx.connect({ projectId });
    const kind = 'RawSeeded';
    const keys = Array.from({ length: N }, (_, i) => Key.of(kind, i + 1));
    await rawSeed(ctx, projectId, keys, LITERAL);

    const seeded = await rawLookup(ctx, projectId, keys);
    // The seed itself must have reached the store intact, or the comparison below proves nothing.
    for (const entity of seeded)
      expect(Object.fromEntries(Object.entries(entity.properties!).map(([n, v]) => [n, normalise(v)]))).toEqual(Object.fromEntries(Object.entries(LITERAL).map(([n, v]) => [n, normalise(v)])));

    const result = await new LocalExecutor().runOperation({ store, job: { namespace: '', id: 'raw#1' }, operation: make(kind), migration: 'raw' });
    expect(result).toMatchObject({ scanned: N, changed: N, failed: 0 });

    const after = await rawLookup(ctx, projectId, keys);
    for (const entity of after) {
      expect(entity).toBeDefined();
      const { x, ...untouched } = entity.properties!;
      expect(normalise(x)).toEqual({ integerValue: '1' });
      expect(Object.keys(untouched).sort()).toEqual(Object.keys(LITERAL).sort());
      for (const [name, literal] of Object.entries(LITERAL)) expect([name, normalise(untouched[name])]).toEqual([name, normalise(literal)]);
      // Spelled out, because these are what a codec most easily drops on the way out.
      const nested = untouched.nested;
      expect(nested.excludeFromIndexes).toBe(true);
      expect(nested.entityValue!.properties!.note).toMatchObject({ excludeFromIndexes: true, meaning: 22 });
      expect(nested.entityValue!.properties!.legacy).toMatchObject({ excludeFromIndexes: true, meaning: 15 });
      expect(nested.entityValue!.properties!.deeper.entityValue!.properties!.hidden).toMatchObject({ excludeFromIndexes: true, meaning: 15 });
    }
  });
});
