import { normalizeDefinition, planSchemaChange, type DefinitionInput, type ModelShape, type Orphan } from '../../src/dynamic';
import { isDsMigrateError } from '../../src/errors';

const now = new Date('2024-05-01T00:00:00Z');

function shape(input: DefinitionInput, base?: ModelShape & { nextFieldId: number }): ModelShape & { nextFieldId: number } {
  const { shape: s, nextFieldId } = normalizeDefinition({ name: input.name, kind: input.kind, fields: input.fields }, base);
  return { ...s, nextFieldId };
}

const v1 = shape({
  name: 'Survey',
  kind: 'SurveyResponse',
  fields: [
    { name: 'title', type: 'string', default: 'Untitled' },
    { name: 'score', type: 'integer', nullable: true },
    { name: 'note', type: 'string', nullable: true },
  ],
});

function plan(after: ModelShape, options: { orphans?: Orphan[]; converted?: string[]; force?: boolean } = {}) {
  return planSchemaChange({ before: v1, after, fromVersion: 1, toVersion: 2, orphans: options.orphans ?? [], now, converted: options.converted, force: options.force });
}

function refusal(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a refusal');
}

describe('planSchemaChange', () => {
  it('an added field needs nothing, unless it is indexed with a default queries must find', () => {
    const after = shape({ ...v1, fields: [...v1.fields, { name: 'colour', type: 'string', default: 'blue' }, { name: 'blob', type: 'json', default: {} }] }, v1);
    const p = plan(after);
    expect(p.steps).toEqual([{ type: 'AddFieldData', kind: 'SurveyResponse', field: 'colour', fieldId: 'f4', safe: true }]);
    expect(p.orphans).toEqual([]);
    expect(p.needsApproval).toBe(false);
  });

  it('a rename copies by stable id and orphans the old name', () => {
    const after = shape({ ...v1, fields: v1.fields.map((f) => (f.name === 'title' ? { ...f, name: 'heading' } : f)) }, v1);
    const p = plan(after);
    expect(p.steps).toEqual([{ type: 'CopyFieldData', kind: 'SurveyResponse', from: 'title', to: 'heading', fieldId: 'f1', safe: true }]);
    expect(p.orphans).toEqual([{ id: 'property:SurveyResponse.title@v2', type: 'property', kind: 'SurveyResponse', property: 'title', fieldId: 'f1', version: 2, since: now.toISOString() }]);
  });

  it('a removal is an orphan, never an operation', () => {
    const p = plan(shape({ ...v1, fields: v1.fields.filter((f) => f.name !== 'note') }, v1));
    expect(p.steps).toEqual([]);
    expect(p.orphans.map((o) => o.id)).toEqual(['property:SurveyResponse.note@v2']);
  });

  it.each([
    ['integer → double', 'score', { type: 'double', nullable: true }, 'integer-to-double'],
    ['T → array of T', 'score', { type: 'array', items: { type: 'integer' } }, 'wrap-in-array'],
    ['string → json', 'note', { type: 'json', nullable: true }, 'to-json'],
    ['integer → json', 'score', { type: 'json', nullable: true }, 'to-json'],
  ] as const)('%s is a built-in lossless conversion, safe', (_label, name, change, converter) => {
    const after = shape({ ...v1, fields: v1.fields.map((f) => (f.name === name ? { id: f.id, name, ...change } : f)) }, v1);
    const p = plan(after);
    expect(p.steps).toHaveLength(1);
    expect(p.steps[0]).toMatchObject({ type: 'ConvertField', field: name, converter, safe: true });
    expect(p.needsApproval).toBe(false);
  });

  it('string ↔ text (indexed ↔ unindexed) re-indexes, safely', () => {
    const after = shape({ ...v1, fields: v1.fields.map((f) => (f.name === 'note' ? { ...f, indexed: false } : f)) }, v1);
    expect(plan(after).steps).toEqual([{ type: 'Reindex', kind: 'SurveyResponse', field: 'note', fieldId: 'f3', indexed: false, safe: true }]);
  });

  it('refuses a lossy type change, naming model, field, from and to; a forced one with a converter needs approval', () => {
    const after = shape({ ...v1, fields: v1.fields.map((f) => (f.name === 'title' ? { id: f.id, name: 'title', type: 'integer' as const, default: 0 } : f)) }, v1);
    const error = refusal(() => plan(after));
    expect(isDsMigrateError(error, 'MODEL_DEFINITION')).toBe(true);
    expect(error.message).toContain('"Survey"');
    expect(error.message).toContain('field "title"');
    expect(error.message).toContain('from string to integer');
    expect(refusal(() => plan(after, { converted: ['title'] })).message).toContain('force');
    const forced = plan(after, { converted: ['title'], force: true });
    expect(forced.steps).toEqual([expect.objectContaining({ type: 'ConvertField', field: 'title', converter: 'custom', safe: false })]);
    expect(forced.needsApproval).toBe(true);
  });

  it('a kind change copies the kind and orphans the old one', () => {
    const p = plan(shape({ ...v1, kind: 'Responses' }, v1));
    expect(p.steps).toEqual([{ type: 'CopyModelData', kind: 'SurveyResponse', toKind: 'Responses', safe: true }]);
    expect(p.orphans.map((o) => o.id)).toEqual(['kind:SurveyResponse@v2']);
  });

  it('a new field may not read another field’s orphaned data; the same id brings it back', () => {
    const orphan: Orphan = { id: 'property:SurveyResponse.old@v2', type: 'property', kind: 'SurveyResponse', property: 'old', fieldId: 'f9', version: 2, since: now.toISOString() };
    const clash = shape({ ...v1, fields: [...v1.fields, { name: 'old', type: 'string', nullable: true }] }, v1);
    expect(refusal(() => plan(clash, { orphans: [orphan] })).message).toContain('left behind in version 2');
    const back = shape({ ...v1, fields: [...v1.fields, { id: 'f9', name: 'old', type: 'string', nullable: true }] }, v1);
    expect(plan(back, { orphans: [orphan] }).restored).toEqual([orphan.id]);
  });

  it('the checksum names the steps: same change, same checksum', () => {
    const after = shape({ ...v1, kind: 'Responses' }, v1);
    expect(plan(after).checksum).toBe(plan(after).checksum);
    expect(plan(after).checksum).not.toBe(plan(shape({ ...v1, kind: 'Other' }, v1)).checksum);
  });
});
