import { detectChanges, type DetectedChanges } from '../../src/migrations';
import { field, Model, type FieldMap, type ModelOptions, type ModelState } from '../../src/model';

const person = (fields: FieldMap, options: ModelOptions = {}) => new Model('Person', fields, options);
const base = { name: field.string(), nickname: field.string({ nullable: true }) };

/** The state the first makemigrations records for the models. */
function recorded(...models: Model[]): ModelState {
  return detectChanges(undefined, models)!.state;
}

/** Each written operation as `new Type(args)`, commented out ones prefixed with `//`. */
function written(changes: DetectedChanges): string[] {
  return changes.operations.map((o) => {
    if (!('operation' in o)) throw new Error('unexpected reference');
    const text = `${o.operation.type}(${JSON.stringify(o.operation.deconstruct(), (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))})`;
    return o.commentedOut ? `// ${text}` : text;
  });
}

describe('detectChanges (the autodetector)', () => {
  const v1 = recorded(person(base));

  it('records a first state with no operations, and finds nothing when the models are unchanged', () => {
    const first = detectChanges(undefined, [person(base)])!;
    expect(first.operations).toEqual([]);
    expect(first.name).toBe('initial');
    expect(first.state.models[0].fields.map((f) => [f.id, f.name])).toEqual([
      ['name', 'name'],
      ['nickname', 'nickname'],
    ]);
    expect(detectChanges(v1, [person(base)])).toBeUndefined();
    // The order of a model's fields means nothing.
    expect(detectChanges(v1, [person({ nickname: base.nickname, name: base.name })])).toBeUndefined();
  });

  it('a new indexed field with a default is written where missing, as the model stores it', () => {
    const changes = detectChanges(v1, [person({ ...base, colour: field.string({ default: 'blue' }), score: field.double({ default: 1 }), rank: field.integer({ default: 3 }) })])!;
    expect(written(changes)).toEqual([
      'AddFieldData(["Person","colour",{"default":"blue"}])',
      'AddFieldData(["Person","rank",{"default":"3n"}])',
      'AddFieldData(["Person","score",{"default":{"value":1}}])',
    ]);
    expect(changes.name).toBe('person_colour_and_more');
  });

  it('a new unindexed field with a default needs no operation: a state-only migration records it', () => {
    const changes = detectChanges(v1, [person({ ...base, notes: field.string({ default: '', indexed: false }), blob: field.json({ default: {} }) })])!;
    expect(changes.operations).toEqual([]);
    expect(changes.state.models[0].fields.map((f) => f.name)).toEqual(['blob', 'name', 'nickname', 'notes']);
    expect(changes.changes).toEqual(['Person.blob added: nothing to write (unindexed, its default applies on load)', 'Person.notes added: nothing to write (unindexed, its default applies on load)']);
  });

  it('a rename copies the data; once marked complete, the old property is removed', () => {
    const renamed = person({ name: base.name, displayName: field.string({ nullable: true, renamedFrom: 'nickname' }) });
    const copy = detectChanges(v1, [renamed])!;
    expect(written(copy)).toEqual(['CopyFieldData(["Person","nickname","displayName",{}])']);
    const field2 = copy.state.models[0].fields.find((f) => f.name === 'displayName')!;
    expect(field2).toMatchObject({ id: 'nickname', renamedFrom: { name: 'nickname', complete: false } });
    expect(detectChanges(copy.state, [renamed])).toBeUndefined();

    const complete = detectChanges(copy.state, [person({ name: base.name, displayName: field.string({ nullable: true, renamedFrom: { name: 'nickname', complete: true } }) })])!;
    expect(written(complete)).toEqual(['RemoveFieldData(["Person","nickname",{}])']);
    // Dropping renamedFrom afterwards changes the state only.
    const dropped = detectChanges(complete.state, [person({ name: base.name, displayName: field.string({ nullable: true }) })])!;
    expect(dropped.operations).toEqual([]);
  });

  it('a removed field is written commented out, with a note on its cost', () => {
    const changes = detectChanges(v1, [person({ name: base.name })])!;
    expect(written(changes)).toEqual(['// RemoveFieldData(["Person","nickname",{}])']);
    const op = changes.operations[0];
    expect(op.comment?.join(' ')).toMatch(/Optional.*rewrites every entity/);
  });

  it('a new unique field builds its markers, and so does a field made unique', () => {
    expect(written(detectChanges(v1, [person({ ...base, email: field.string({ unique: true, indexed: true }) })])!)).toEqual(['BuildUniqueMarkers(["Person","email",{}])']);
    expect(written(detectChanges(v1, [person({ ...base, name: field.string({ unique: true }) })])!)).toEqual(['BuildUniqueMarkers(["Person","name",{}])']);
  });

  it('a kind renamed with renamedFrom is copied, the old kind left for a commented-out delete', () => {
    const changes = detectChanges(v1, [new Model('People', base, { renamedFrom: 'Person' })])!;
    expect(written(changes)).toEqual(['CopyModelData(["Person","People",{}])', '// DeleteModelData(["Person",{}])']);
    expect(changes.state.models.map((k) => k.kind)).toEqual(['People']);
  });

  it('a model removed leaves a commented-out DeleteModelData', () => {
    const two = recorded(person(base), new Model('Log', { at: field.timestamp() }));
    expect(written(detectChanges(two, [person(base)])!)).toEqual(['// DeleteModelData(["Log",{}])']);
  });

  it('operations run in the model namespace', () => {
    const ns = recorded(person(base, { namespace: 'tenant-a' }));
    expect(written(detectChanges(ns, [person({ ...base, colour: field.string({ default: 'red' }) }, { namespace: 'tenant-a' })])!)).toEqual([
      'AddFieldData(["Person","colour",{"namespace":"tenant-a","default":"red"}])',
    ]);
  });

  it('stops on a field gone and another of its type new, naming both ways out; --no-rename takes a removal plus an addition', () => {
    const models = [person({ name: base.name, displayName: field.string({ nullable: true }), age: field.integer({ nullable: true }) })];
    expect(() => detectChanges(v1, models)).toThrow(
      expect.objectContaining({
        code: 'BAD_INPUT',
        exitCode: 2,
        context: expect.objectContaining({ kind: 'Person', field: 'nickname' }),
        message: expect.stringMatching(/field "nickname" \(string\) is gone and "displayName" \(string\) is new.*displayName: field.string\(\{ renamedFrom: 'nickname' \}\)[\s\S]*--no-rename/),
      }),
    );
    expect(() => detectChanges(v1, models)).not.toThrow(/"age"/);
    const noRename = detectChanges(v1, models, { noRename: true })!;
    expect(written(noRename)).toEqual(['AddFieldData(["Person","age",{"default":null}])', 'AddFieldData(["Person","displayName",{"default":null}])', '// RemoveFieldData(["Person","nickname",{}])']);
  });

  it('stops on a kind gone and a kind new with the same fields', () => {
    expect(() => detectChanges(v1, [new Model('People', base)])).toThrow(/kind Person is gone and People is new.*renamedFrom: 'Person'/);
    expect(detectChanges(v1, [new Model('People', base)], { noRename: true })!.operations).toHaveLength(1);
  });

  it('a composite index change is flagged for index.yaml and named in the description', () => {
    const changes = detectChanges(v1, [
      person(base, {
        indexes: [
          {
            properties: [
              ['name', 'asc'],
              ['nickname', 'desc'],
            ],
          },
        ],
      }),
    ])!;
    expect(changes.indexesChanged).toBe(true);
    expect(changes.operations).toEqual([]);
    expect(changes.changes.join('; ')).toContain('index.yaml');
  });

  it('a type change or a re-index is left to the user, in a note', () => {
    const changes = detectChanges(v1, [person({ name: field.string({ indexed: false }), nickname: field.array(field.string()) })])!;
    expect(changes.operations).toEqual([]);
    expect(changes.notes.join('\n')).toMatch(/Person.nickname changed type from string to array of string/);
    expect(changes.notes.join('\n')).toMatch(/Person.name is now excluded from indexes/);
  });

  it('a computed default of a new indexed field is left to the user, in a note', () => {
    const changes = detectChanges(v1, [person({ ...base, createdAt: field.timestamp({ default: () => new Date() }) })])!;
    expect(changes.operations).toEqual([]);
    expect(changes.notes[0]).toContain('its default is a function');
  });
});
