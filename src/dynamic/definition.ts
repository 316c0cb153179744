import { DsMigrateError, isDsMigrateError } from '../errors';
import { checkValue, FIELD_TYPES, kindOf, type FieldDefinition, type FieldType, type ItemDefinition, type ModelShape } from '../model';
import { canonicalJson, sha256Hex, type JsonValue } from './hash';

export type { FieldDefinition, ItemDefinition, ModelShape } from '../model';

/** A definition as stored: its shape plus the bookkeeping of compare-and-set. */
export interface ModelDefinition extends ModelShape {
  /** 1 when first defined, +1 on every change. */
  readonly version: number;
  readonly hash: string;
  readonly updatedAt: Date;
  readonly updatedBy: string;
  /** The counter behind generated field ids (`f1`, `f2`, …), so that a removed field's id is never handed out again. */
  readonly nextFieldId: number;
}

/** A field as callers write it: only name and type are required. */
export interface FieldInput {
  /** Give your own stable id, or leave it out: a field named as one of the current definition keeps that field's id, others get a new one. */
  readonly id?: string;
  readonly name: string;
  readonly type: FieldType;
  readonly items?: { readonly type: Exclude<FieldType, 'array'>; readonly nullable?: boolean };
  readonly default?: JsonValue;
  readonly nullable?: boolean;
  /** Defaults to true, except for json and blob. */
  readonly indexed?: boolean;
  readonly unique?: boolean;
}

export interface DefinitionInput {
  readonly name: string;
  /** The Datastore kind the model reads and writes; defaults to the name. */
  readonly kind?: string;
  /** In order: the order is part of the definition. */
  readonly fields: readonly FieldInput[];
}

const RESERVED = /^__.*__$/;
const GENERATED_ID = /^f([1-9]\d{0,8})$/;
const MAX_NAME_BYTES = 1500;
const FIELD_ATTRIBUTES = new Set(['id', 'name', 'type', 'items', 'default', 'nullable', 'indexed', 'unique']);
const DEFINITION_ATTRIBUTES = new Set(['name', 'kind', 'fields']);
/** Types whose values JSON cannot hold, so a stored definition cannot give them a default. */
const NO_STORED_DEFAULT = new Set<FieldType>(['key', 'blob', 'geoPoint']);

/** sha256 of the canonical JSON of the shape alone: version and bookkeeping are not what defines the model. */
export function definitionHash({ name, kind, fields }: ModelShape): string {
  return sha256Hex(canonicalJson({ name, kind, fields }));
}

/**
 * Checks a definition and makes every attribute explicit. `base` is the current stored definition on an
 * update: fields given without an id keep the id of its field of the same name. Throws MODEL_DEFINITION
 * naming the definition and field; never touches Datastore.
 */
export function normalizeDefinition(input: DefinitionInput, base?: Pick<ModelDefinition, 'fields' | 'nextFieldId'>): { shape: ModelShape; nextFieldId: number } {
  if (!isRecord(input)) throw definitionError('(unnamed)', 'must be an object with a name and fields');
  const name = checkName(input.name);
  const fail = (why: string, field?: string): never => {
    throw definitionError(name, why, field);
  };
  rejectUnknown(input, DEFINITION_ATTRIBUTES, (key) => fail(`has an unknown attribute "${key}"; allowed: ${[...DEFINITION_ATTRIBUTES].join(', ')}`));
  const kind = checkKind(name, input.kind ?? name);
  if (!Array.isArray(input.fields)) fail('needs `fields` as an array: their order is part of the definition');

  const fields = (input.fields as readonly unknown[]).map((field, i) => checkField(name, field, i));
  const seenNames = new Set<string>();
  const seenIds = new Set<string>();
  let next = base?.nextFieldId ?? 1;
  for (const field of fields) {
    if (seenNames.has(field.name)) fail(`has two fields named "${field.name}"`, field.name);
    seenNames.add(field.name);
    if (field.id !== undefined) {
      if (seenIds.has(field.id)) fail(`has two fields with id "${field.id}"`, field.name);
      seenIds.add(field.id);
      // An explicit id shaped like a generated one moves the counter past it, so it is never generated again.
      const generated = GENERATED_ID.exec(field.id);
      if (generated) next = Math.max(next, Number(generated[1]) + 1);
    }
  }

  // Ids: explicit ones, else the base's id for the same name, else a fresh one from the counter.
  const baseIds = new Map((base?.fields ?? []).map((f) => [f.name, f.id]));
  const withIds = fields.map((field): FieldDefinition => {
    if (field.id !== undefined) return field as FieldDefinition;
    const kept = baseIds.get(field.name);
    const id = kept !== undefined && !seenIds.has(kept) ? kept : `f${next++}`;
    seenIds.add(id);
    return { ...field, id };
  });
  return { shape: { name, kind, fields: withIds }, nextFieldId: next };
}

type CheckedField = Omit<FieldDefinition, 'id'> & { id?: string };

function checkField(definition: string, raw: unknown, index: number): CheckedField {
  if (!isRecord(raw)) throw definitionError(definition, `field #${index + 1} must be an object with a name and a type`);
  const input = raw as Partial<FieldInput>;
  if (typeof input.name !== 'string' || input.name === '') throw definitionError(definition, `field #${index + 1} needs a non-empty name`);
  const name = input.name;
  const fail = (why: string): never => {
    throw definitionError(definition, `field "${name}" ${why}`, name);
  };
  if (RESERVED.test(name)) fail("has a reserved name (__name__ is Datastore's)");
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) fail(`has a name longer than ${MAX_NAME_BYTES} bytes`);
  rejectUnknown(input, FIELD_ATTRIBUTES, (key) => fail(`has an unknown attribute "${key}"; allowed: ${[...FIELD_ATTRIBUTES].join(', ')}`));
  if (input.id !== undefined && (typeof input.id !== 'string' || input.id === '')) fail('has an id that is not a non-empty string');
  if (!FIELD_TYPES.includes(input.type as FieldType)) fail(`has unknown type ${JSON.stringify(input.type)}; valid types are ${FIELD_TYPES.join(', ')}`);
  const type = input.type as FieldType;
  for (const flag of ['nullable', 'indexed', 'unique'] as const) {
    if (input[flag] !== undefined && typeof input[flag] !== 'boolean') fail(`has ${flag} = ${JSON.stringify(input[flag])}; it must be true or false`);
  }

  let items: ItemDefinition | undefined;
  if (type === 'array') {
    if (!isRecord(input.items)) fail('is an array and needs `items: {type}`');
    const itemType = input.items!.type;
    if (itemType === ('array' as FieldType)) fail('is an array of arrays, which Datastore cannot store');
    if (!FIELD_TYPES.includes(itemType)) fail(`has unknown item type ${JSON.stringify(itemType)}; valid types are ${FIELD_TYPES.filter((t) => t !== 'array').join(', ')}`);
    if (input.items!.nullable !== undefined && typeof input.items!.nullable !== 'boolean') fail('has items.nullable that is not true or false');
    items = { type: itemType, nullable: input.items!.nullable ?? false };
  } else if (input.items !== undefined) {
    fail(`is of type ${type} and cannot have items`);
  }

  const indexed = input.indexed ?? !(type === 'json' || type === 'blob');
  if (indexed && type === 'json') fail('is json, which is stored as unindexed text and cannot be indexed');
  const nullable = input.nullable ?? false;
  if (input.default !== undefined) {
    if (!isJson(input.default)) fail('has a default that is not a JSON value');
    const reason = checkValue({ type, items, nullable }, toFieldValue(type, items, input.default, fail));
    if (reason) fail(`has a default that ${reason.replace(/^holds/, 'is')}`);
  }
  // Absent attributes stay absent (not undefined), so the definition reads and compares cleanly.
  return {
    ...(input.id !== undefined && { id: input.id }),
    name,
    type,
    ...(items && { items }),
    ...(input.default !== undefined && { default: input.default }),
    nullable,
    indexed,
    unique: input.unique ?? false,
  };
}

/**
 * A stored default as the model's JavaScript value: timestamps are ISO text in the definition, and types
 * JSON cannot hold have no stored default (an empty array of them is fine).
 */
export function toFieldValue(type: FieldType, items: ItemDefinition | undefined, value: JsonValue, fail: (why: string) => never = defaultFailure): unknown {
  if (value === null) return null;
  if (type === 'array' && Array.isArray(value)) return value.map((v: JsonValue) => toFieldValue(items!.type, undefined, v, fail));
  if (NO_STORED_DEFAULT.has(type)) return fail(`is of type ${type}, which cannot have a stored default`);
  if (type === 'timestamp') {
    const date = typeof value === 'string' && ISO_8601.test(value) ? new Date(value) : undefined;
    return date && !Number.isNaN(date.getTime()) ? date : fail('has a timestamp default that is not ISO 8601 text such as "2024-01-31T00:00:00Z"');
  }
  if (type === 'integer' && typeof value === 'number' && !Number.isSafeInteger(value)) return fail(`has an integer default beyond 2^53 (${value}), which JSON would round`);
  return value;
}

const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;

function defaultFailure(why: string): never {
  throw new DsMigrateError('MODEL_DEFINITION', `A stored default ${why}.`);
}

function checkName(name: unknown): string {
  if (typeof name !== 'string' || name === '') throw definitionError(String(name ?? ''), 'needs a non-empty string name');
  if (RESERVED.test(name)) throw definitionError(name, "has a reserved name (__name__ is Datastore's)");
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) throw definitionError(name, `has a name longer than ${MAX_NAME_BYTES} bytes`);
  return name;
}

function checkKind(name: string, kind: unknown): string {
  try {
    return kindOf(kind as string);
  } catch (error) {
    if (!isDsMigrateError(error)) throw error;
    throw new DsMigrateError('MODEL_DEFINITION', `Model definition "${name}": ${error.message}`, { model: name, kind: typeof kind === 'string' ? kind : undefined });
  }
}

function definitionError(name: string, why: string, field?: string): DsMigrateError {
  return new DsMigrateError('MODEL_DEFINITION', `Model definition "${name}" ${why}.`, field === undefined ? { model: name } : { model: name, field });
}

function rejectUnknown(value: object, allowed: ReadonlySet<string>, fail: (key: string) => never): void {
  for (const key of Object.keys(value)) if (!allowed.has(key)) fail(key);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isJson(value: unknown): value is JsonValue {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true;
  if (typeof value === 'number') return Number.isFinite(value);
  if (Array.isArray(value)) return value.every(isJson);
  if (!isRecord(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return (proto === Object.prototype || proto === null) && Object.values(value).every(isJson);
}
