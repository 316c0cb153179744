import { defineModel, field, indexYaml, Model } from '../../src/model';

describe('composite indexes: definitions', () => {
  const fields = { name: field.string(), age: field.integer(), bio: field.string({ indexed: false }), prefs: field.json() };

  it('keeps the declared indexes in a plain shape', () => {
    const Person = new Model('Person', fields, {
      indexes: [
        {
          properties: [
            ['age', 'asc'],
            ['name', 'desc'],
          ],
        },
        { properties: [['name', 'asc']], ancestor: true },
      ],
    });
    expect(Person.indexes).toEqual([
      {
        kind: 'Person',
        ancestor: false,
        properties: [
          { name: 'age', direction: 'asc' },
          { name: 'name', direction: 'desc' },
        ],
      },
      { kind: 'Person', ancestor: true, properties: [{ name: 'name', direction: 'asc' }] },
    ]);
  });

  it('refuses an index on a field excluded from indexes, naming the kind, index and field', () => {
    expect(() =>
      defineModel('Person', fields, {
        indexes: [
          {
            properties: [
              ['age', 'asc'],
              ['bio', 'asc'],
            ],
          },
        ],
      }),
    ).toThrow('Model Person: index 1 names "bio", which is excluded from indexes (indexed: false or string); index the field or leave it out.');
    expect(() =>
      defineModel('Person', fields, {
        indexes: [
          {
            properties: [
              ['prefs', 'asc'],
              ['age', 'asc'],
            ],
          },
        ],
      }),
    ).toThrow(expect.objectContaining({ code: 'MODEL_DEFINITION', context: { kind: 'Person', field: 'prefs' } }));
  });

  it('refuses an index on an unknown field', () => {
    expect(() =>
      defineModel('Person', fields, {
        indexes: [
          {
            properties: [
              ['age', 'asc'],
              ['nmae' as never, 'asc'],
            ],
          },
        ],
      }),
    ).toThrow('Model Person: index 1 names "nmae", which is not a field of the model.');
  });

  it('refuses malformed entries, repeats, and single-property indexes without ancestor', () => {
    const bad = (indexes: unknown) => () => defineModel('Person', fields, { indexes: indexes as never });
    expect(bad({})).toThrow(/Model Person: indexes must be a list/);
    expect(
      bad([
        {
          properties: [
            ['age', 'up'],
            ['name', 'asc'],
          ],
        },
      ]),
    ).toThrow('Model Person: index 1 has the property ["age","up"]; write [field, "asc"] or [field, "desc"].');
    expect(
      bad([
        {
          properties: [
            ['age', 'asc'],
            ['age', 'desc'],
          ],
        },
      ]),
    ).toThrow('Model Person: index 1 names "age" twice.');
    expect(bad([{ properties: [['age', 'asc']] }])).toThrow(/index 1 needs at least two properties, or one with ancestor: true/);
    expect(
      bad([
        {
          properties: [
            ['age', 'asc'],
            ['name', 'asc'],
          ],
          ancestor: 'no',
        },
      ]),
    ).toThrow('Model Person: index 1 has ancestor set to something other than true or false.');
    expect(
      bad([
        {
          properties: [
            ['age', 'asc'],
            ['name', 'asc'],
          ],
        },
        {
          properties: [
            ['age', 'asc'],
            ['name', 'asc'],
          ],
          ancestor: false,
        },
      ]),
    ).toThrow('Model Person: index 2 is declared twice.');
  });
});

describe('index.yaml', () => {
  it("writes gcloud's format: kinds sorted, declared order kept, odd names quoted", () => {
    const Task = new Model(
      'Task',
      { done: field.boolean(), priority: field.integer(), created: field.timestamp(), yes: field.string() },
      {
        indexes: [
          {
            properties: [
              ['done', 'asc'],
              ['priority', 'desc'],
            ],
          },
          { properties: [['created', 'desc']], ancestor: true },
        ],
      },
    );
    const Odd = new Model(
      'Odd: kind',
      { yes: field.string(), 'a b': field.string() },
      {
        indexes: [
          {
            properties: [
              ['yes', 'asc'],
              ['a b', 'desc'],
            ],
          },
        ],
      },
    );
    expect(indexYaml([...Task.indexes, ...Odd.indexes])).toBe(
      [
        "# Written by `dsmigrate indexes` from the models' declared indexes; change the models, not this file.",
        'indexes:',
        '',
        '- kind: "Odd: kind"',
        '  ancestor: no',
        '  properties:',
        '  - name: "yes"',
        '    direction: asc',
        '  - name: "a b"',
        '    direction: desc',
        '',
        '- kind: Task',
        '  ancestor: no',
        '  properties:',
        '  - name: done',
        '    direction: asc',
        '  - name: priority',
        '    direction: desc',
        '',
        '- kind: Task',
        '  ancestor: yes',
        '  properties:',
        '  - name: created',
        '    direction: desc',
        '',
      ].join('\n'),
    );
    expect(indexYaml([])).toBe("# Written by `dsmigrate indexes` from the models' declared indexes; change the models, not this file.\nindexes: []\n");
  });
});
