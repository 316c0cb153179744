import { DsMigrateError } from '../errors';
import { Key, type Entity } from '../datastore';

/** The types a stored control property may have; `?` allows it to be missing or null. */
type FieldType = 'string' | 'number' | 'boolean' | 'date' | 'key' | 'blob';
type Spec = FieldType | `${FieldType}?`;

type TypeOf<T extends FieldType> = T extends 'string' ? string : T extends 'number' ? number : T extends 'boolean' ? boolean : T extends 'date' ? Date : T extends 'key' ? Key : Buffer;
type Decoded<S extends Record<string, Spec>> = {
  [K in keyof S]: S[K] extends `${infer T extends FieldType}?` ? TypeOf<T> | undefined : S[K] extends FieldType ? TypeOf<S[K]> : never;
};

function matches(type: FieldType, value: unknown): boolean {
  switch (type) {
    case 'string':
      return typeof value === 'string';
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    case 'boolean':
      return typeof value === 'boolean';
    case 'date':
      return value instanceof Date && !Number.isNaN(value.getTime());
    case 'key':
      return value instanceof Key;
    case 'blob':
      return Buffer.isBuffer(value);
  }
}

/** A control entity written by another version, or by hand, is refused with its key named rather than half-read. */
export function corrupt(entity: Entity, what: string): DsMigrateError {
  return new DsMigrateError('DATASTORE', `Stored state ${entity.key} is not what this version of datastore-migrate wrote: ${what}. Remove it (or clear the migration's state) and run again.`, {
    key: entity.key.toString(),
  });
}

/**
 * Reads a stored control entity as strictly as a request payload: every listed property must have
 * its type (integers may come back as numbers or bigints), and a missing required one is an error.
 */
export function decodeStored<S extends Record<string, Spec>>(entity: Entity, spec: S): Decoded<S> {
  const out: Record<string, unknown> = {};
  for (const [name, wanted] of Object.entries(spec)) {
    const optional = wanted.endsWith('?');
    const type = (optional ? wanted.slice(0, -1) : wanted) as FieldType;
    let value: unknown = entity.get(name);
    if (typeof value === 'bigint') value = Number(value);
    if (value === undefined || value === null) {
      if (!optional) throw corrupt(entity, `it has no ${name}`);
      out[name] = undefined;
      continue;
    }
    if (!matches(type, value)) throw corrupt(entity, `its ${name} is not a ${type}`);
    out[name] = value;
  }
  return out as Decoded<S>;
}

/** A JSON property, parsed and checked by `valid` (the shape a writer of this version gives it). */
export function decodeJson<T>(entity: Entity, name: string, text: string, valid: (value: Record<string, unknown>) => boolean): T {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw corrupt(entity, `its ${name} is not JSON`);
  }
  if (typeof parsed !== 'object' || parsed === null || !valid(parsed as Record<string, unknown>)) throw corrupt(entity, `its ${name} has an unexpected shape`);
  return parsed as T;
}
