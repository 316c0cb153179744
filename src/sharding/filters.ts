import { compareUtf8, Double, Entity, GeoPoint, Key, type PropertyFilter, type Value } from '../datastore';

/**
 * Filters run in two places. Equality goes into the shard's key-range query (any backend serves
 * `prop = v` ordered by key from built-in indexes); the others are checked here, because legacy
 * Datastore allows one inequality per query and the key range already is one. Every filter is checked
 * again on the entity read inside the batch's transaction, so an entity changed since the scan saw it
 * is judged on its current value.
 */
export function pushedDown(filters: readonly PropertyFilter[]): PropertyFilter[] {
  return filters.filter((f) => f.op === '=');
}

/** Whether the entity matches every filter as Datastore would: only indexed values match. */
export function matchesFilters(entity: Entity, filters: readonly PropertyFilter[]): boolean {
  return filters.every((f) => matchesFilter(entity, f));
}

function matchesFilter(entity: Entity, filter: PropertyFilter): boolean {
  if (!entity.has(filter.property) || entity.isIndexed(filter.property) === false) return false;
  const stored = entity.get(filter.property) as Value;
  // An array matches when one of its elements does.
  const values = Array.isArray(stored) ? stored : [stored];
  return values.some((v) => test(v, filter));
}

function test(value: Value, { op, value: operand }: PropertyFilter): boolean {
  switch (op) {
    case '=':
      return compare(value, operand) === 0;
    case '!=':
      return compare(value, operand) !== 0;
    case 'IN':
      return asList(operand).some((o) => compare(value, o) === 0);
    case 'NOT_IN':
      return asList(operand).every((o) => compare(value, o) !== 0);
    default: {
      const c = compare(value, operand);
      if (c === undefined) return false;
      return op === '<' ? c < 0 : op === '<=' ? c <= 0 : op === '>' ? c > 0 : c >= 0;
    }
  }
}

function asList(operand: Value): Value[] {
  return Array.isArray(operand) ? operand : [operand];
}

/** Orders two values of the same type; undefined for values of different types (never equal). */
export function compare(x: Value, y: Value): number | undefined {
  const a = x instanceof Double ? x.value : x;
  const b = y instanceof Double ? y.value : y;
  if (a === null || b === null) return a === b ? 0 : undefined;
  if ((typeof a === 'number' || typeof a === 'bigint') && (typeof b === 'number' || typeof b === 'bigint')) return a < b ? -1 : a > b ? 1 : 0;
  if (typeof a === 'string' && typeof b === 'string') return compareUtf8(a, b);
  if (typeof a === 'boolean' && typeof b === 'boolean') return Number(a) - Number(b);
  if (a instanceof Date && b instanceof Date) return a.getTime() - b.getTime();
  if (Buffer.isBuffer(a) && Buffer.isBuffer(b)) return Buffer.compare(a, b);
  if (a instanceof Key && b instanceof Key) return a.namespace === b.namespace ? Key.compare(a, b) : a.namespace < b.namespace ? -1 : 1;
  if (a instanceof GeoPoint && b instanceof GeoPoint) return a.latitude - b.latitude || a.longitude - b.longitude;
  return undefined;
}
