import { Entity, Key } from '../../src/datastore';
import { ModelFactory, type StoredVersusModels } from '../../src/dynamic';
import { runCli, tempApp } from '../support/cli';
import { describeEachFlavour } from '../support/emulators';

jest.setTimeout(240_000);

const namespace = 'intro-models';

/** The app's defineModel model: `nick` is the old name of displayName, `email` is never written below. */
const MODELS = `import { defineModel, field } from 'datastore-migrate';
export const Person = defineModel('Person', {
  name: field.string(),
  age: field.integer({ nullable: true }),
  displayName: field.string({ renamedFrom: 'nick' }),
  email: field.string({ nullable: true }),
});
`;

describeEachFlavour('dsmigrate introspect with models', (ctx) => {
  let cwd: string;
  const cli = (...args: string[]) => runCli(['introspect', '--namespace', namespace, '--models-namespace', namespace, ...args], { cwd, env: ctx.env() });

  beforeAll(async () => {
    const store = await ctx.connect();
    await new ModelFactory(store, { namespace, stalenessMs: 0, register: false }).define({
      name: 'Survey',
      kind: 'Answer',
      fields: [
        { name: 'title', type: 'string' },
        { name: 'score', type: 'integer' },
        { name: 'comment', type: 'string', nullable: true },
      ],
    });
    const person = (id: number, age: number | string) => Entity.from(Key.of('Person', id, { namespace }), { name: `p${id}`, age, nick: `n${id}`, legacy: 'old' });
    const answer = (id: number, score: number | string) => Entity.from(Key.of('Answer', id, { namespace }), { title: `t${id}`, score, stale: true }, { excludeFromIndexes: ['stale'] });
    // Person 4 alone holds `late`: a sample of 2 misses it, the metadata (where there is any) does not.
    const late = person(4, 52).set('late', 'x');
    await store.save([person(1, 30), person(2, 'seven'), person(3, 41), late, answer(1, 5), answer(2, 'high'), Entity.from(Key.of('Stray', 'x', { namespace }), { anything: 1 })]);
    cwd = tempApp({ 'models.ts': MODELS, 'dsmigrate.config.json': JSON.stringify({ models: ['models.ts'] }) });
  });

  it('reports orphaned properties, wrong types and fields never stored, for a defineModel model and a runtime definition', async () => {
    const result = await cli('--json');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout.trim().split('\n')).toHaveLength(1);
    const report = JSON.parse(result.stdout) as StoredVersusModels;
    expect(report.source.types).toBe('sample of 500 per kind');
    expect(report.kinds.map((k) => k.kind)).toEqual(['Answer', 'Person']);
    const [answer, person] = report.kinds;

    expect(person).toMatchObject({
      models: [{ name: 'Person', origin: 'defineModel' }],
      sampled: 4,
      // nick is displayName's old name: in use, so neither orphaned nor making displayName "never stored".
      orphaned: [expect.objectContaining({ property: 'late', count: 1 }), expect.objectContaining({ property: 'legacy', count: 4 })],
      mismatched: [{ field: 'age', property: 'age', expected: 'integer or null', stored: 'string', count: 1, examples: [`${Key.of('Person', 2, { namespace })}`] }],
      neverStored: ['email'],
    });
    expect(answer).toMatchObject({
      models: [{ name: 'Survey', origin: 'runtime' }],
      sampled: 2,
      // stale is unindexed: the metadata never lists it, the sample finds it.
      orphaned: [expect.objectContaining({ property: 'stale', count: 2 })],
      mismatched: [{ field: 'score', property: 'score', expected: 'integer', stored: 'string', count: 1, examples: [`${Key.of('Answer', 2, { namespace })}`] }],
      neverStored: ['comment'],
    });

    if (ctx.flavour === 'classic') {
      // __kind__ finds Stray unasked; the tool's own kinds (the stored definitions) are not reported.
      expect(report.source).toMatchObject({ kinds: 'metadata', properties: 'metadata and a sample of 500 per kind' });
      expect(report.note).toBeUndefined();
      expect(report.unknownKinds).toEqual([{ kind: 'Stray', sampled: 1, properties: ['anything'] }]);
      expect(person.orphaned[0].representations).toEqual(['STRING']);
    } else {
      expect(report.source).toMatchObject({ kinds: 'models and arguments', properties: 'sample of 500 per kind' });
      expect(report.note).toMatch(/cannot be discovered/);
      expect(report.unknownKinds).toEqual([]);
    }
  });

  it('checks kinds named on the command line, and says which it cannot find', async () => {
    const result = await cli('Stray', 'Nowhere', '--json', '--sample', '2');
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as StoredVersusModels;
    expect(report.source.types).toBe('sample of 2 per kind');
    expect(report.unknownKinds).toEqual([{ kind: 'Stray', sampled: 1, properties: ['anything'] }]);
    expect(report.notStored).toEqual(['Nowhere']);
    // A sample of 2 misses Person 3 but still finds every finding above (Person 2 holds the string age).
    const person = report.kinds.find((k) => k.kind === 'Person')!;
    expect(person).toMatchObject({ sampled: 2, mismatched: [expect.objectContaining({ field: 'age', count: 1 })] });
    expect(person.orphaned.find((o) => o.property === 'late')).toEqual(ctx.flavour === 'classic' ? { property: 'late', count: 0, representations: ['STRING'] } : undefined);
  });

  it('prints a readable table; a bad --sample exits 2 naming the flag', async () => {
    const result = await cli('Stray');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/Stray\s+unknown kind/);
    expect(result.stdout).toMatch(/Person\s+orphaned property\s+legacy\s+4 of 4/);
    expect(result.stdout).toMatch(/Person\s+wrong type\s+age\s+1 of 4\s+string where field age is integer or null/);
    expect(result.stdout).toMatch(/Answer\s+field never stored\s+comment/);

    for (const bad of ['0', '1.5', 'many']) {
      const refused = await cli('--sample', bad);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain('--sample');
    }
  });
});
