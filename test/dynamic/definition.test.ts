import { buildModel, normalizeDefinition, type DefinitionInput } from '../../src/dynamic';
import { Model } from '../../src/model';

const normalize = (input: unknown) => normalizeDefinition(input as DefinitionInput);

describe('normalizeDefinition', () => {
  it('makes every attribute explicit and numbers new fields from the counter', () => {
    const { shape, nextFieldId } = normalize({
      name: 'Survey',
      fields: [
        { name: 'title', type: 'string' },
        { name: 'blob', type: 'blob' },
      ],
    });
    expect(shape).toEqual({
      name: 'Survey',
      kind: 'Survey',
      fields: [
        { id: 'f1', name: 'title', type: 'string', nullable: false, indexed: true, unique: false },
        { id: 'f2', name: 'blob', type: 'blob', nullable: false, indexed: false, unique: false },
      ],
    });
    expect(nextFieldId).toBe(3);
  });

  it('keeps ids by name on an update and never hands out an id again', () => {
    const v1 = normalize({
      name: 'S',
      fields: [
        { name: 'a', type: 'string' },
        { name: 'b', type: 'string' },
      ],
    });
    const base = { fields: v1.shape.fields, nextFieldId: v1.nextFieldId };
    // b removed, a renamed by id, c and b added: the new b is a new field.
    const v2 = normalizeDefinition(
      {
        name: 'S',
        fields: [
          { id: 'f1', name: 'a2', type: 'string' },
          { name: 'c', type: 'string' },
        ],
      },
      base,
    );
    expect(v2.shape.fields.map((f) => [f.id, f.name])).toEqual([
      ['f1', 'a2'],
      ['f3', 'c'],
    ]);
    const v3 = normalizeDefinition({ name: 'S', fields: [...v2.shape.fields, { name: 'b', type: 'integer' }] }, { fields: v2.shape.fields, nextFieldId: v2.nextFieldId });
    expect(v3.shape.fields.map((f) => f.id)).toEqual(['f1', 'f3', 'f4']);
  });

  it('moves the counter past an explicit id shaped like a generated one', () => {
    const { shape, nextFieldId } = normalize({
      name: 'S',
      fields: [
        { name: 'a', type: 'string' },
        { id: 'f7', name: 'b', type: 'string' },
      ],
    });
    expect(shape.fields.map((f) => f.id)).toEqual(['f8', 'f7']);
    expect(nextFieldId).toBe(9);
  });

  it('builds the Model defineModel would: field order, index settings, defaults (a fresh Date per entity)', () => {
    const { shape } = normalize({
      name: 'S',
      kind: 'Kind',
      fields: [
        { name: 'at', type: 'timestamp', default: '2024-01-31T00:00:00Z' },
        { name: 'tags', type: 'array', items: { type: 'string' }, default: ['x'] },
        { name: 'notes', type: 'string', indexed: false, nullable: true },
      ],
    });
    const model = buildModel(shape, 'tenant');
    expect(model).toBeInstanceOf(Model);
    expect([model.kind, model.namespace, Object.keys(model.fields)]).toEqual(['Kind', 'tenant', ['at', 'tags', 'notes']]);
    const [a, b] = [model.create(1), model.create(2)];
    expect(a.values).toEqual({ at: new Date('2024-01-31T00:00:00Z'), tags: ['x'], notes: null });
    expect(a.values.at).not.toBe(b.values.at);
    expect(a.values.tags).not.toBe(b.values.tags);
    expect(model.toEntity(a).isIndexed('notes')).toBe(false);
  });

  describe('bad definitions: a clear MODEL_DEFINITION error naming the definition and field', () => {
    it.each([
      [
        'duplicate field names',
        {
          name: 'S',
          fields: [
            { name: 'a', type: 'string' },
            { name: 'a', type: 'integer' },
          ],
        },
        /Model definition "S" has two fields named "a"/,
      ],
      [
        'duplicate field ids',
        {
          name: 'S',
          fields: [
            { id: 'x', name: 'a', type: 'string' },
            { id: 'x', name: 'b', type: 'string' },
          ],
        },
        /two fields with id "x"/,
      ],
      ['an unknown type', { name: 'S', fields: [{ name: 'age', type: 'int' }] }, /field "age" has unknown type "int"; valid types are string, integer/],
      ['an unknown item type', { name: 'S', fields: [{ name: 't', type: 'array', items: { type: 'str' } }] }, /field "t" has unknown item type "str"/],
      ['an array of arrays', { name: 'S', fields: [{ name: 't', type: 'array', items: { type: 'array' } }] }, /array of arrays/],
      ['a reserved field name', { name: 'S', fields: [{ name: '__key__', type: 'string' }] }, /field "__key__" has a reserved name/],
      ['an empty field name', { name: 'S', fields: [{ name: '', type: 'string' }] }, /field #1 needs a non-empty name/],
      ['a reserved definition name', { name: '__S__', fields: [] }, /Model definition "__S__" has a reserved name/],
      ['an empty kind name', { name: 'S', kind: '', fields: [] }, /Model definition "S": Invalid kind ""/],
      ['a reserved kind name', { name: 'S', kind: '__kind__', fields: [] }, /Model definition "S": Invalid kind "__kind__"/],
      ['a kind with surrounding spaces', { name: 'S', kind: ' S', fields: [] }, /Invalid kind " S"/],
      ['fields as an object', { name: 'S', fields: { a: { type: 'string' } } }, /needs `fields` as an array: their order is part of the definition/],
      ['a misspelt attribute', { name: 'S', fields: [{ name: 'a', type: 'string', defualt: 'x' }] }, /field "a" has an unknown attribute "defualt"/],
      ['a default of the wrong type', { name: 'S', fields: [{ name: 'n', type: 'integer', default: 'ten' }] }, /field "n" has a default that is a string \("ten"\), expected integer/],
      ['a null default on a field that is not nullable', { name: 'S', fields: [{ name: 'n', type: 'string', default: null }] }, /is null but the field is not nullable/],
      ['a default JSON cannot hold', { name: 'S', fields: [{ name: 'k', type: 'key', default: 'Person:1' }] }, /field "k" is of type key, which cannot have a stored default/],
      ['a timestamp default that is not ISO text', { name: 'S', fields: [{ name: 'at', type: 'timestamp', default: 'yesterday' }] }, /not ISO 8601 text/],
      ['an integer default JSON would round', { name: 'S', fields: [{ name: 'n', type: 'integer', default: 2 ** 60 }] }, /beyond 2\^53/],
      ['indexed json', { name: 'S', fields: [{ name: 'j', type: 'json', indexed: true }] }, /cannot be indexed/],
      ['a flag that is not a boolean', { name: 'S', fields: [{ name: 'a', type: 'string', unique: 'yes' }] }, /unique = "yes"; it must be true or false/],
    ])('%s', (_, input, message) => {
      let error: unknown;
      try {
        normalize(input);
      } catch (e) {
        error = e;
      }
      expect(error).toMatchObject({ code: 'MODEL_DEFINITION', message: expect.stringMatching(message) });
    });
  });
});
