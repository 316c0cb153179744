import { Key, type RpcEvent } from '../../src/datastore';
import { DEFINITION_KIND, definitionHash, ModelFactory, type DefinitionChangedEvent, type ModelDefinition } from '../../src/dynamic';
import { isDsMigrateError } from '../../src/errors';
import { Model, modelFor } from '../../src/model';
import { describeEachFlavour } from '../support/emulators';

const survey = {
  name: 'Survey',
  kind: 'SurveyResponse',
  fields: [
    { name: 'title', type: 'string' as const, default: 'Untitled' },
    { name: 'score', type: 'double' as const, nullable: true },
  ],
};

function counter() {
  const events: RpcEvent[] = [];
  return {
    onRpc: (e: RpcEvent) => events.push(e),
    count: (method: RpcEvent['method']) => events.filter((e) => e.method === method).length,
    reset: () => (events.length = 0),
    get all() {
      return events.map((e) => e.method);
    },
  };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

describeEachFlavour('ModelFactory', (ctx) => {
  let seq = 0;
  /** A fresh namespace per test, so definitions never leak between tests. */
  const namespace = () => `dyn-${++seq}`;

  it('defines a model, stores its definition and serves the same Model API', async () => {
    const store = await ctx.connect();
    const factory = new ModelFactory(store, { namespace: namespace() });
    const { model, definition } = await factory.define(survey);
    expect(definition).toMatchObject({ name: 'Survey', kind: 'SurveyResponse', version: 1, nextFieldId: 3 });
    expect(definition.hash).toBe(definitionHash(definition));
    expect(definition.fields.map((f) => [f.id, f.name])).toEqual([
      ['f1', 'title'],
      ['f2', 'score'],
    ]);

    const got = await factory.get('Survey');
    expect(got).toBe(model);
    expect(got).toBeInstanceOf(Model);
    expect(got.kind).toBe('SurveyResponse');
    expect(got.namespace).toBe(factory.namespace);
    expect(modelFor('SurveyResponse')).toBe(got);

    await got.save(store, got.create(1, { score: 4.5 }));
    expect((await got.get(store, 1))!.values).toEqual({ title: 'Untitled', score: 4.5 });

    const raw = (await store.get(Key.of(DEFINITION_KIND, 'Survey', { namespace: factory.namespace })))!;
    expect(raw.toObject()).toMatchObject({ kind: 'SurveyResponse', version: 1, hash: definition.hash, updatedBy: expect.stringMatching(/:\d+$/) });
    expect(raw.get('updatedAt')).toBeInstanceOf(Date);
    expect(JSON.parse(raw.get('fields') as string)).toEqual(definition.fields);
    expect(raw.isIndexed('fields')).toBe(false);
  });

  it('reports an unknown name clearly, after one lookup and no query', async () => {
    const rpc = counter();
    const factory = new ModelFactory(await ctx.connect({ onRpc: rpc.onRpc }), { namespace: namespace() });
    const error = await rejection(factory.get('Nope'));
    expect(error).toMatchObject({ code: 'UNKNOWN_KIND', context: { model: 'Nope' } });
    expect((error as Error).message).toMatch(/No model definition named "Nope" is stored \(kind _dsmigrate_model, namespace "dyn-\d+"\); define it first/);
    expect(rpc.all).toEqual(['lookup']);
  });

  it('serves the cache within the staleness bound and checks with exactly one lookup after it', async () => {
    const ns = namespace();
    const writer = new ModelFactory(await ctx.connect(), { namespace: ns });
    await writer.define(survey);

    let now = 1000;
    const rpc = counter();
    const reader = new ModelFactory(await ctx.connect({ onRpc: rpc.onRpc }), { namespace: ns, stalenessMs: 100, clock: () => now });
    const v1 = await reader.get('Survey');
    expect(rpc.all).toEqual(['lookup']);

    rpc.reset();
    await writer.update('Survey', (d) => ({ fields: [...d.fields, { name: 'added', type: 'boolean', default: false }] }));
    now += 99;
    expect(await reader.get('Survey')).toBe(v1);
    expect(rpc.all).toEqual([]);

    now += 1;
    const [a, b, c] = await Promise.all([reader.get('Survey'), reader.get('Survey'), reader.getDefinition('Survey')]);
    expect(rpc.all).toEqual(['lookup']);
    expect(a).toBe(b);
    expect(a).not.toBe(v1);
    expect(Object.keys(a.fields)).toEqual(['title', 'score', 'added']);
    expect(c.version).toBe(2);

    // Unchanged definition: the check is one lookup and the same Model comes back.
    rpc.reset();
    now += 100;
    expect(await reader.get('Survey')).toBe(a);
    expect(rpc.all).toEqual(['lookup']);
  });

  it('checks on every get when the bound is 0', async () => {
    const ns = namespace();
    const rpc = counter();
    const factory = new ModelFactory(await ctx.connect({ onRpc: rpc.onRpc }), { namespace: ns, stalenessMs: 0 });
    await factory.define(survey);
    rpc.reset();
    for (let i = 0; i < 5; i++) await factory.get('Survey');
    expect(rpc.count('lookup')).toBe(5);
    expect(rpc.count('runQuery')).toBe(0);
    expect(rpc.all).toEqual(Array(5).fill('lookup'));
  });

  it('never lets a slow writer overwrite a newer definition (two updaters racing on one model)', async () => {
    const ns = namespace();
    const fast = new ModelFactory(await ctx.connect(), { namespace: ns, updatedBy: 'fast' });
    const slow = new ModelFactory(await ctx.connect(), { namespace: ns, updatedBy: 'slow' });
    await fast.define(survey);

    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let started!: () => void;
    const slowStarted = new Promise<void>((resolve) => (started = resolve));
    const slowUpdate = slow.update('Survey', async (d) => {
      started();
      await released; // generating takes long; meanwhile the fast writer commits
      return { fields: [...d.fields, { name: 'slow', type: 'string', nullable: true }] };
    });
    await slowStarted;
    const fastResult = await fast.update('Survey', (d) => ({ fields: [...d.fields, { name: 'fast', type: 'string', nullable: true }] }));
    release();

    const error = await rejection(slowUpdate);
    expect(isDsMigrateError(error, 'CONFLICT')).toBe(true);
    expect(error).toMatchObject({ context: { model: 'Survey', expectedVersion: 1, actualVersion: 2 } });
    expect((error as Error).message).toMatch(/changed after version 1, which this change started from \(stored: version 2\); read it again and retry/);
    const stored = await fast.getDefinition('Survey');
    expect(stored).toMatchObject({ version: 2, hash: fastResult.definition.hash, updatedBy: 'fast' });

    // The retry starts from version 2 and keeps both changes.
    const retried = await slow.update('Survey', (d) => ({ fields: [...d.fields, { name: 'slow', type: 'string', nullable: true }] }));
    expect(retried.definition.version).toBe(3);
    expect(retried.definition.fields.map((f) => f.name)).toEqual(['title', 'score', 'fast', 'slow']);
    expect(Object.keys(retried.model.fields)).toEqual(['title', 'score', 'fast', 'slow']);

    // Every version stays readable: the history the compare-and-set relies on.
    expect((await slow.definitionAt('Survey', 2)).hash).toBe(fastResult.definition.hash);
    expect((await slow.definitionAt('Survey', 1)).fields.map((f) => f.name)).toEqual(['title', 'score']);
    await expect(slow.definitionAt('Survey', 9)).rejects.toThrow('Model definition "Survey" has no version 9.');
  });

  it('honours expectedVersion, and writes nothing for a change that keeps the hash', async () => {
    const ns = namespace();
    const rpc = counter();
    const factory = new ModelFactory(await ctx.connect({ onRpc: rpc.onRpc }), { namespace: ns });
    await factory.define(survey);
    await expect(factory.update('Survey', {}, { expectedVersion: 7 })).rejects.toMatchObject({ code: 'CONFLICT', context: { expectedVersion: 7, actualVersion: 1 } });
    rpc.reset();
    const same = await factory.update('Survey', (d) => ({ fields: d.fields }), { expectedVersion: 1 });
    expect(same.definition.version).toBe(1);
    expect(rpc.all).toEqual(['lookup']);
    await expect(factory.update('Survey', { name: 'Other' } as never)).rejects.toThrow(/a change may set kind and fields, not "name"/);
  });

  it('makes define idempotent for the same definition and a conflict for another', async () => {
    const ns = namespace();
    const a = new ModelFactory(await ctx.connect(), { namespace: ns });
    const b = new ModelFactory(await ctx.connect(), { namespace: ns });
    const first = await a.define(survey);
    const again = await b.define({ ...survey, fields: survey.fields.map((f) => ({ ...f, indexed: true })) });
    expect(again.definition).toMatchObject({ version: 1, hash: first.definition.hash });
    await expect(b.define({ ...survey, fields: [] })).rejects.toMatchObject({
      code: 'CONFLICT',
      message: expect.stringMatching(/already exists at version 1 with another hash; change it with update\(\)/),
    });
  });

  it('emits definitionChanged with old and new definitions and the diff, locally and when a check finds a change', async () => {
    const ns = namespace();
    const writer = new ModelFactory(await ctx.connect(), { namespace: ns });
    const reader = new ModelFactory(await ctx.connect(), { namespace: ns, stalenessMs: 0 });
    const local: DefinitionChangedEvent[] = [];
    const remote: DefinitionChangedEvent[] = [];
    writer.on('definitionChanged', (e) => local.push(e));
    reader.on('definitionChanged', (e) => remote.push(e));

    await writer.define(survey);
    await reader.get('Survey');
    expect(remote).toHaveLength(0); // learning a definition is not a change
    const { definition: v2 } = await writer.update('Survey', (d) => ({
      fields: [
        { ...d.fields[0], name: 'heading' },
        { name: 'tags', type: 'array', items: { type: 'string' } },
      ],
    }));
    const model = await reader.get('Survey');

    expect(local.map((e) => [e.origin, e.previous?.version, e.current.version])).toEqual([
      ['local', undefined, 1],
      ['local', 1, 2],
    ]);
    expect(remote).toHaveLength(1);
    const event = remote[0];
    expect(event).toMatchObject({ name: 'Survey', origin: 'remote', current: v2, model });
    expect((event.previous as ModelDefinition).version).toBe(1);
    expect(event.diff).toMatchObject({
      renamed: [{ id: 'f1', from: 'title', to: 'heading' }],
      removed: [expect.objectContaining({ id: 'f2', name: 'score' })],
      added: [expect.objectContaining({ id: 'f3', name: 'tags' })],
    });
  });

  describe('bad definitions: a clear error and nothing stored', () => {
    it.each([
      [
        'duplicate field names',
        {
          name: 'Bad',
          fields: [
            { name: 'a', type: 'string' },
            { name: 'a', type: 'string' },
          ],
        },
        /has two fields named "a"/,
      ],
      ['an unknown type', { name: 'Bad', fields: [{ name: 'a', type: 'text' }] }, /field "a" has unknown type "text"/],
      ['a reserved field name', { name: 'Bad', fields: [{ name: '__scatter__', type: 'string' }] }, /field "__scatter__" has a reserved name/],
      ['an invalid kind name', { name: 'Bad', kind: '__Bad__', fields: [] }, /Invalid kind "__Bad__"/],
    ])('%s', async (_, input, message) => {
      const rpc = counter();
      const store = await ctx.connect({ onRpc: rpc.onRpc });
      const factory = new ModelFactory(store, { namespace: namespace() });
      await expect(factory.define(input as never)).rejects.toMatchObject({ code: 'MODEL_DEFINITION', message: expect.stringMatching(message) });
      expect(rpc.all).toEqual([]);
      expect(await store.get(Key.of(DEFINITION_KIND, 'Bad', { namespace: factory.namespace }))).toBeUndefined();
    });

    it('leaves the stored definition as it was when an update is bad', async () => {
      const rpc = counter();
      const factory = new ModelFactory(await ctx.connect({ onRpc: rpc.onRpc }), { namespace: namespace() });
      const { definition } = await factory.define(survey);
      rpc.reset();
      await expect(factory.update('Survey', (d) => ({ fields: [...d.fields, { name: 'title', type: 'integer' }] }))).rejects.toThrow(/two fields named "title"/);
      expect(rpc.all).toEqual(['lookup']);
      expect(await factory.getDefinition('Survey')).toMatchObject({ version: 1, hash: definition.hash });
    });
  });

  it('refuses a stored definition whose fields do not match its hash, naming its key', async () => {
    const store = await ctx.connect();
    const factory = new ModelFactory(store, { namespace: namespace() });
    const { definition } = await factory.define(survey);
    const key = Key.of(DEFINITION_KIND, 'Survey', { namespace: factory.namespace });
    const edited = (await store.get(key))!;
    edited.set('fields', JSON.stringify([{ ...definition.fields[0], type: 'integer', default: 0 }]), { indexed: false });
    await store.save([edited]);
    await expect(new ModelFactory(store, { namespace: factory.namespace }).get('Survey')).rejects.toMatchObject({
      code: 'MODEL_DEFINITION',
      message: expect.stringMatching(/The stored model definition \[dyn-\d+\]_dsmigrate_model:"Survey" has fields that do not match its hash/),
    });
  });

  it('keeps definitions of different namespaces apart', async () => {
    const [nsA, nsB] = [namespace(), namespace()];
    const store = await ctx.connect();
    const a = new ModelFactory(store, { namespace: nsA });
    const b = new ModelFactory(store, { namespace: nsB });
    await a.define(survey);
    expect((await a.get('Survey')).namespace).toBe(nsA);
    await expect(b.get('Survey')).rejects.toMatchObject({ code: 'UNKNOWN_KIND' });
  });
});
