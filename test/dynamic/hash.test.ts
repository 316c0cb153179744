import { canonicalJson, definitionHash, normalizeDefinition, type DefinitionInput } from '../../src/dynamic';
import vectors from './hash-vectors.json';

/** The same value with every object's keys in reverse order, at every depth. */
function reverseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reverseKeys);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.entries(value)
      .reverse()
      .map(([k, v]) => [k, reverseKeys(v)]),
  );
}

const hashOf = (input: unknown) => definitionHash(normalizeDefinition(input as DefinitionInput).shape);

describe('definition hash', () => {
  it.each(vectors.map((v) => [v.description, v] as const))('matches the pinned vector: %s', (_, vector) => {
    const { shape } = normalizeDefinition(vector.definition as DefinitionInput);
    expect(canonicalJson(shape)).toBe(vector.canonical);
    expect(definitionHash(shape)).toBe(vector.hash);
  });

  it.each(vectors.map((v) => [v.description, v] as const))('does not change when keys are reordered: %s', (_, vector) => {
    const reordered = reverseKeys(vector.definition);
    expect(JSON.stringify(reordered)).not.toBe(JSON.stringify(vector.definition));
    expect(hashOf(reordered)).toBe(vector.hash);
  });

  it('does not change when implied attributes are written out', () => {
    const implied = {
      name: 'P',
      fields: [
        { name: 'a', type: 'string' },
        { name: 'j', type: 'json' },
      ],
    };
    const explicit = {
      name: 'P',
      kind: 'P',
      fields: [
        { id: 'f1', name: 'a', type: 'string', nullable: false, indexed: true, unique: false },
        { id: 'f2', name: 'j', type: 'json', nullable: false, indexed: false, unique: false },
      ],
    };
    expect(hashOf(explicit)).toBe(hashOf(implied));
  });

  it('changes with field order, attributes, ids and kind', () => {
    const base = {
      name: 'P',
      fields: [
        { name: 'a', type: 'string' },
        { name: 'b', type: 'integer' },
      ],
    };
    const variants = [
      { ...base, fields: [base.fields[1], base.fields[0]] },
      { ...base, fields: [base.fields[0], { ...base.fields[1], nullable: true }] },
      { ...base, fields: [base.fields[0], { ...base.fields[1], unique: true }] },
      { ...base, fields: [base.fields[0], { ...base.fields[1], default: 0 }] },
      { ...base, fields: [base.fields[0], { ...base.fields[1], id: 'other' }] },
      { ...base, kind: 'Q' },
    ];
    const hashes = new Set([base, ...variants].map(hashOf));
    expect(hashes.size).toBe(variants.length + 1);
  });

  it('writes canonical JSON: sorted keys at every depth, arrays in order, undefined left out', () => {
    expect(canonicalJson({ b: [3, { y: 1, x: undefined, a: 'é' }], a: null })).toBe('{"a":null,"b":[3,{"a":"é","y":1}]}');
    expect(() => canonicalJson({ n: Number.NaN })).toThrow(/Cannot hash NaN/);
    expect(() => canonicalJson({ d: new Date(0) })).toThrow(/Cannot hash a value of type Date/);
  });
});
