import { diffDefinitions, normalizeDefinition, type DefinitionInput } from '../../src/dynamic';

const shape = (input: DefinitionInput) => normalizeDefinition(input).shape;

describe('diffDefinitions', () => {
  const before = shape({
    name: 'S',
    fields: [
      { id: 'a', name: 'title', type: 'string' },
      { id: 'b', name: 'count', type: 'integer' },
      { id: 'c', name: 'legacy', type: 'string' },
      { id: 'd', name: 'tags', type: 'array', items: { type: 'string' } },
    ],
  });

  it('matches fields by stable id: added, removed, renamed, retyped and changed', () => {
    const after = shape({
      name: 'S',
      kind: 'S2',
      fields: [
        { id: 'a', name: 'heading', type: 'string', default: '' },
        { id: 'b', name: 'count', type: 'double' },
        { id: 'd', name: 'tags', type: 'array', items: { type: 'integer' } },
        { id: 'e', name: 'legacy', type: 'string' },
      ],
    });
    const diff = diffDefinitions(before, after);
    expect(diff.kind).toEqual({ from: 'S', to: 'S2' });
    expect(diff.added.map((f) => f.id)).toEqual(['e']);
    expect(diff.removed.map((f) => f.id)).toEqual(['c']);
    expect(diff.renamed).toEqual([{ id: 'a', from: 'title', to: 'heading' }]);
    expect(diff.retyped.map((r) => [r.name, r.from.type, r.to.type, r.to.items?.type])).toEqual([
      ['count', 'integer', 'double', undefined],
      ['tags', 'array', 'array', 'integer'],
    ]);
    expect(diff.changed).toEqual([{ id: 'a', name: 'heading', attributes: ['default'] }]);
    expect(diff.reordered).toBe(false);
  });

  it('reports a new definition as all added, and a pure reorder', () => {
    expect(diffDefinitions(undefined, before)).toMatchObject({ added: before.fields, removed: [], renamed: [], reordered: false });
    const reordered = { ...before, fields: [...before.fields].reverse() };
    expect(diffDefinitions(before, reordered)).toEqual({ added: [], removed: [], renamed: [], retyped: [], changed: [], reordered: true });
  });
});
