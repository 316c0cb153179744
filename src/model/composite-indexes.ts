import { DsMigrateError } from '../errors';
import { fieldIndexed, isPlainObject, type FieldSpec } from './fields';

export type IndexDirection = 'asc' | 'desc';

/** A composite index a model's queries need: `{properties: [['age', 'asc'], ['name', 'desc']], ancestor: false}`. */
export interface CompositeIndex<Name extends string = string> {
  properties: readonly (readonly [Name, IndexDirection])[];
  /** Whether the index serves ancestor queries (`ancestor: yes` in index.yaml). Defaults to false. */
  ancestor?: boolean;
}

/** The index as index.yaml holds it, and as `dsmigrate indexes --json` prints it. */
export interface IndexEntry {
  kind: string;
  ancestor: boolean;
  properties: { name: string; direction: IndexDirection }[];
}

/** Checks a model's composite indexes against its fields; every message names the kind, the index and the field. */
export function validateIndexes(kind: string, fields: Readonly<Record<string, FieldSpec>>, indexes: unknown): IndexEntry[] {
  if (indexes === undefined) return [];
  if (!Array.isArray(indexes)) throw definitionError(kind, 'indexes must be a list of {properties: [[field, "asc" | "desc"], ...], ancestor}');
  const seen = new Set<string>();
  return indexes.map((index: unknown, i) => {
    const where = `index ${i + 1}`;
    if (!isPlainObject(index) || !Array.isArray(index.properties)) throw definitionError(kind, `${where} must be {properties: [[field, "asc" | "desc"], ...], ancestor}`);
    if (index.ancestor !== undefined && typeof index.ancestor !== 'boolean') throw definitionError(kind, `${where} has ancestor set to something other than true or false`);
    const ancestor = index.ancestor === true;
    const names = new Set<string>();
    const properties = (index.properties as unknown[]).map((entry) => {
      if (!Array.isArray(entry) || entry.length !== 2 || typeof entry[0] !== 'string' || (entry[1] !== 'asc' && entry[1] !== 'desc')) {
        throw definitionError(kind, `${where} has the property ${JSON.stringify(entry)}; write [field, "asc"] or [field, "desc"]`);
      }
      const [name, direction] = entry as [string, IndexDirection];
      const spec = fields[name];
      if (!spec) throw definitionError(kind, `${where} names "${name}", which is not a field of the model`, name);
      if (!fieldIndexed(spec)) throw definitionError(kind, `${where} names "${name}", which is excluded from indexes (indexed: false or ${spec.type}); index the field or leave it out`, name);
      if (names.has(name)) throw definitionError(kind, `${where} names "${name}" twice`, name);
      names.add(name);
      return { name, direction };
    });
    // Datastore keeps single-property indexes itself; index.yaml is for the composite ones.
    if (properties.length < (ancestor ? 1 : 2)) throw definitionError(kind, `${where} needs at least two properties, or one with ancestor: true (single-property indexes are built in)`);
    const signature = JSON.stringify([ancestor, properties]);
    if (seen.has(signature)) throw definitionError(kind, `${where} is declared twice`);
    seen.add(signature);
    return { kind, ancestor, properties };
  });
}

function definitionError(kind: string, why: string, field?: string): DsMigrateError {
  return new DsMigrateError('MODEL_DEFINITION', `Model ${kind}: ${why}.`, { kind, field });
}
