import { canonicalJson } from './canonical-json';
import type { FieldDefinition, ModelShape } from './schema-shape';

export type FieldAttribute = 'default' | 'nullable' | 'indexed' | 'unique' | 'renamedFrom';

/** How one shape became another, fields matched by their stable id. */
export interface SchemaDiff {
  kind?: { from: string; to: string };
  added: FieldDefinition[];
  removed: FieldDefinition[];
  renamed: { id: string; from: string; to: string }[];
  /** The type, or an array's item type, changed: the stored data may need converting. */
  retyped: { id: string; name: string; from: FieldDefinition; to: FieldDefinition }[];
  changed: { id: string; name: string; attributes: FieldAttribute[] }[];
  /** The remaining fields kept their ids but not their order. */
  reordered: boolean;
}

const ATTRIBUTES: readonly FieldAttribute[] = ['default', 'nullable', 'indexed', 'unique', 'renamedFrom'];

/** The diff from `before` (undefined for a new model) to `after`. */
export function diffDefinitions(before: ModelShape | undefined, after: ModelShape): SchemaDiff {
  const old = new Map((before?.fields ?? []).map((f) => [f.id, f]));
  const now = new Map(after.fields.map((f) => [f.id, f]));
  const diff: SchemaDiff = {
    ...(before && before.kind !== after.kind && { kind: { from: before.kind, to: after.kind } }),
    added: after.fields.filter((f) => !old.has(f.id)),
    removed: (before?.fields ?? []).filter((f) => !now.has(f.id)),
    renamed: [],
    retyped: [],
    changed: [],
    reordered: false,
  };
  for (const to of after.fields) {
    const from = old.get(to.id);
    if (!from) continue;
    if (from.name !== to.name) diff.renamed.push({ id: to.id, from: from.name, to: to.name });
    if (from.type !== to.type || from.items?.type !== to.items?.type || from.items?.nullable !== to.items?.nullable) {
      diff.retyped.push({ id: to.id, name: to.name, from, to });
    }
    const attributes = ATTRIBUTES.filter((a) => !same(from[a], to[a]));
    if (attributes.length > 0) diff.changed.push({ id: to.id, name: to.name, attributes });
  }
  const keptBefore = (before?.fields ?? []).filter((f) => now.has(f.id)).map((f) => f.id);
  const keptAfter = after.fields.filter((f) => old.has(f.id)).map((f) => f.id);
  diff.reordered = keptBefore.some((id, i) => keptAfter[i] !== id);
  return diff;
}

function same(a: unknown, b: unknown): boolean {
  return a === undefined || b === undefined ? a === b : canonicalJson(a) === canonicalJson(b);
}
