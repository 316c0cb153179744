import { GeoPoint, Key } from '../datastore';
import { DsMigrateError } from '../errors';
import { canonicalJson, type JsonValue } from './canonical-json';
import type { IndexDirection } from './composite-indexes';
import type { Model } from './define-model';
import { FIELD_TYPES, fieldIndexed, isPlainObject, renameOf, type FieldSpec, type FieldType } from './fields';
import type { FieldDefinition, ItemDefinition, ModelShape } from './schema-shape';

/**
 * The defineModel models as a generated migration records them (`state` in the file), so that the state
 * the app's migrations lead to is read from the files alone, as Django rebuilds its from its migrations.
 * Each kind's fields carry stable ids (the name a field was first recorded under), so that the shared
 * diff (schema-diff.ts) tells a rename from a removal and an addition as it does for runtime definitions.
 */
export interface ModelState {
  /** The format of this object; a newer tool refuses nothing older. */
  readonly version: 1;
  /** Sorted by kind. */
  readonly models: readonly KindState[];
}

export interface KindState {
  readonly kind: string;
  readonly fields: readonly FieldDefinition[];
  readonly indexes: readonly StateIndex[];
}

export interface StateIndex {
  readonly ancestor: boolean;
  readonly properties: readonly { readonly name: string; readonly direction: IndexDirection }[];
}

/**
 * A default that is a function (called per entity) has no value to record: the state records this, so that
 * a change to or from a function is seen, and a function's body is not.
 */
export const COMPUTED_DEFAULT: JsonValue = { $computed: true };

/** A kind's state as the shape the shared diff compares (defineModel models are named by their kind). */
export function shapeOf(kind: KindState): ModelShape {
  return { name: kind.kind, kind: kind.kind, fields: kind.fields };
}

/** Two states record the same models. */
export function sameState(a: ModelState, b: ModelState): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

/**
 * A change that a name alone cannot settle: a field (or kind) gone and another of the same type (or fields)
 * new. It may be a rename or a removal plus an addition; the user says which.
 */
export interface AmbiguousChange {
  readonly kind: string;
  readonly gone: string;
  /** The new fields (or the new kind) it may have been renamed to. */
  readonly added: readonly string[];
  /** A field's type; absent for a kind. */
  readonly type?: string;
}

export interface StateOptions {
  /** Take every field or kind gone and another new as a removal plus an addition, never as a rename. */
  readonly noRename?: boolean;
}

/**
 * The state of the models in code, matched with the recorded state `previous`: a field keeps the id of the
 * recorded field of its name, or of the name it is `renamedFrom`; a model takes the recorded kind of its
 * name, or of the kind it is `renamedFrom`. Refuses (BAD_INPUT, exit 2) an ambiguous change, naming each one
 * and both ways to settle it, unless `noRename`.
 */
export function stateOfModels(models: readonly Model[], previous: ModelState | undefined, options: StateOptions = {}): { state: ModelState; matched: ReadonlyMap<string, KindState> } {
  const recorded = new Map((previous?.models ?? []).map((k) => [k.kind, k]));
  const kinds = new Set(models.map((m) => m.kind));
  const matched = new Map<string, KindState>();
  for (const model of models) {
    const from = recorded.get(model.kind) ?? (model.renamedFrom === undefined ? undefined : recorded.get(model.renamedFrom));
    if (model.renamedFrom !== undefined && kinds.has(model.renamedFrom)) {
      throw new DsMigrateError('BAD_INPUT', `Model ${model.kind} is renamedFrom "${model.renamedFrom}", which is still a model: remove the old model, or the renamedFrom.`, {
        kind: model.kind,
      });
    }
    if (from) matched.set(model.kind, from);
  }
  const ambiguous: AmbiguousChange[] = [];
  const kindsOut = models.map((model) => {
    const before = matched.get(model.kind);
    const fields = fieldsOf(model, before, ambiguous);
    return { kind: model.kind, fields, indexes: model.indexes.map(({ ancestor, properties }) => ({ ancestor, properties: properties.map(({ name, direction }) => ({ name, direction })) })) };
  });
  ambiguous.push(...ambiguousKinds(models, recorded, matched));
  if (ambiguous.length > 0 && !options.noRename) throw ambiguityError(ambiguous);
  return { state: { version: 1, models: kindsOut.sort((a, b) => (a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0)) }, matched };
}

function fieldsOf(model: Model, before: KindState | undefined, ambiguous: AmbiguousChange[]): FieldDefinition[] {
  const byName = new Map((before?.fields ?? []).map((f) => [f.name, f]));
  const taken = new Set((before?.fields ?? []).map((f) => f.id));
  const kept = new Set<string>();
  const fresh: FieldDefinition[] = [];
  const fields = Object.entries(model.fields).map(([name, spec]) => {
    const rename = renameOf(spec);
    const match = byName.get(name) ?? (rename ? byName.get(rename.name) : undefined);
    const id = match ? match.id : freshId(name, taken);
    taken.add(id);
    const field = definitionOf(id, name, spec);
    if (match) kept.add(match.id);
    else fresh.push(field);
    return field;
  });
  // Sorted by name: the order of a defineModel's fields means nothing, so reordering them changes no state.
  fields.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const gone of (before?.fields ?? []).filter((f) => !kept.has(f.id))) {
    const candidates = fresh.filter((f) => sameType(f, gone)).map((f) => f.name);
    if (candidates.length > 0) ambiguous.push({ kind: model.kind, gone: gone.name, added: candidates, type: typeName(gone) });
  }
  return fields;
}

/** The name a field was first recorded under; a name an earlier field still holds as its id gets a suffix. */
function freshId(name: string, taken: ReadonlySet<string>): string {
  if (!taken.has(name)) return name;
  let n = 2;
  while (taken.has(`${name}~${n}`)) n++;
  return `${name}~${n}`;
}

/** A kind gone and a model new with the same fields (names and types) may be one kind renamed. */
function ambiguousKinds(models: readonly Model[], recorded: ReadonlyMap<string, KindState>, matched: ReadonlyMap<string, KindState>): AmbiguousChange[] {
  const used = new Set([...matched.values()].map((k) => k.kind));
  const gone = [...recorded.values()].filter((k) => !used.has(k.kind) && !models.some((m) => m.kind === k.kind));
  const signature = (fields: readonly FieldDefinition[]) => JSON.stringify(fields.map((f) => `${f.name}:${typeName(f)}`).sort());
  const out: AmbiguousChange[] = [];
  for (const model of models.filter((m) => !matched.has(m.kind))) {
    const fields = Object.entries(model.fields).map(([name, spec]) => definitionOf(name, name, spec));
    for (const old of gone) if (signature(old.fields) === signature(fields)) out.push({ kind: model.kind, gone: old.kind, added: [model.kind] });
  }
  return out;
}

function ambiguityError(changes: readonly AmbiguousChange[]): DsMigrateError {
  const lines = changes.map((c) => {
    if (c.type === undefined)
      return `- kind ${c.gone} is gone and ${c.added[0]} is new with the same fields: if it was renamed, declare defineModel('${c.added[0]}', {...}, { renamedFrom: '${c.gone}' })`;
    const builder = c.type.startsWith('array') ? 'array(...' : `${c.type}(`;
    const renamed = c.added.map((name) => `${name}: field.${builder}{ renamedFrom: '${c.gone}' })`).join(' or ');
    return `- ${c.kind}: field "${c.gone}" (${c.type}) is gone and ${c.added.map((n) => `"${n}"`).join(', ')} (${c.type}) ${c.added.length > 1 ? 'are' : 'is'} new: if it was renamed, declare ${renamed}`;
  });
  const first = changes[0];
  return new DsMigrateError(
    'BAD_INPUT',
    `makemigrations cannot tell a rename from a removal plus an addition:\n${lines.join('\n')}\n` +
      'Declare each rename in the model, or run makemigrations --no-rename to take them all as removals plus additions. Nothing was written.',
    { kind: first.kind, field: first.type === undefined ? undefined : first.gone, ambiguous: changes },
  );
}

function sameType(a: FieldDefinition, b: FieldDefinition): boolean {
  return a.type === b.type && a.items?.type === b.items?.type;
}

function typeName(f: FieldDefinition): string {
  return f.type === 'array' ? `array of ${f.items!.type}` : f.type;
}

/** A defineModel field as the state records it: every attribute explicit, the default as JSON. */
export function definitionOf(id: string, name: string, spec: FieldSpec): FieldDefinition {
  const items: ItemDefinition | undefined = spec.items && { type: spec.items.type as ItemDefinition['type'], nullable: spec.items.nullable ?? false };
  const rename = renameOf(spec);
  return {
    id,
    name,
    type: spec.type,
    ...(items && { items }),
    ...(spec.default !== undefined && { default: typeof spec.default === 'function' ? COMPUTED_DEFAULT : jsonOf(spec.default) }),
    nullable: spec.nullable ?? false,
    indexed: fieldIndexed(spec),
    unique: spec.unique ?? false,
    ...(rename && { renamedFrom: { name: rename.name, complete: rename.complete ?? false } }),
  };
}

/** A default as JSON, exactly enough to tell two defaults apart: timestamps as ISO text, keys as their path, blobs as base64. */
function jsonOf(value: unknown): JsonValue {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Key) return value.toString();
  if (Buffer.isBuffer(value)) return value.toString('base64');
  if (value instanceof GeoPoint) return { latitude: value.latitude, longitude: value.longitude };
  if (Array.isArray(value)) return value.map(jsonOf);
  if (isPlainObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, jsonOf(v)]));
  return String(value);
}

/**
 * Reads the `state` of a migration file, strictly: it is written by makemigrations, so anything else is a
 * hand edit that would mislead every later diff. MIGRATION_LOAD (exit 2) names the file and what is wrong.
 */
export function decodeModelState(value: unknown, file: string): ModelState {
  const fail = (why: string): never => {
    throw new DsMigrateError('MIGRATION_LOAD', `${file}: its state ${why}. The state is written by dsmigrate makemigrations: restore the file from version control rather than edit it.`, {
      file,
    });
  };
  if (!isPlainObject(value) || value.version !== 1 || !Array.isArray(value.models)) return fail('is not {version: 1, models: [...]}');
  const seen = new Set<string>();
  const models = (value.models as unknown[]).map((raw, i): KindState => {
    if (!isPlainObject(raw) || typeof raw.kind !== 'string' || !Array.isArray(raw.fields) || !Array.isArray(raw.indexes)) return fail(`has models[${i}] that is not {kind, fields, indexes}`);
    if (seen.has(raw.kind)) fail(`records kind ${raw.kind} twice`);
    seen.add(raw.kind);
    const fields = (raw.fields as unknown[]).map((f, j) => decodeField(f, () => fail(`has a bad field ${j + 1} in kind ${raw.kind as string}`)));
    const indexes = (raw.indexes as unknown[]).map((index, j) => decodeIndex(index, () => fail(`has a bad index ${j + 1} in kind ${raw.kind as string}`)));
    return { kind: raw.kind, fields, indexes };
  });
  return { version: 1, models };
}

function decodeField(raw: unknown, fail: () => never): FieldDefinition {
  if (!isPlainObject(raw) || typeof raw.id !== 'string' || typeof raw.name !== 'string' || !FIELD_TYPES.includes(raw.type as FieldType)) return fail();
  if (typeof raw.nullable !== 'boolean' || typeof raw.indexed !== 'boolean' || typeof raw.unique !== 'boolean') return fail();
  const items = raw.items;
  if (items !== undefined && (!isPlainObject(items) || !FIELD_TYPES.includes(items.type as FieldType) || typeof items.nullable !== 'boolean')) return fail();
  const rename = raw.renamedFrom;
  if (rename !== undefined && (!isPlainObject(rename) || typeof rename.name !== 'string' || typeof rename.complete !== 'boolean')) return fail();
  return raw as unknown as FieldDefinition;
}

function decodeIndex(raw: unknown, fail: () => never): StateIndex {
  if (!isPlainObject(raw) || typeof raw.ancestor !== 'boolean' || !Array.isArray(raw.properties)) return fail();
  for (const p of raw.properties as unknown[]) if (!isPlainObject(p) || typeof p.name !== 'string' || (p.direction !== 'asc' && p.direction !== 'desc')) fail();
  return raw as unknown as StateIndex;
}
