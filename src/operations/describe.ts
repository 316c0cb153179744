import { Double, GeoPoint, Key } from '../datastore';
import type { Scope } from './options';

/**
 * A stable, JSON-safe form of an argument: functions as their source text (or just `function`, where
 * the text would differ between compilers of the same file), keys and dates as strings.
 */
export function jsonOf(value: unknown, functionText = true): unknown {
  if (typeof value === 'function') return functionText ? `function: ${value.toString()}` : 'function';
  if (typeof value === 'bigint') return `${value}n`;
  if (value instanceof Key) return `key: ${value}`;
  if (value instanceof Date) return `date: ${value.toISOString()}`;
  if (Buffer.isBuffer(value)) return `blob: ${value.toString('base64')}`;
  if (value instanceof Double) return value.value;
  if (value instanceof GeoPoint) return { latitude: value.latitude, longitude: value.longitude };
  if (Array.isArray(value)) return value.map((v) => jsonOf(v, functionText));
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const name of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[name];
      if (v !== undefined) out[name] = jsonOf(v, functionText);
    }
    return out;
  }
  return value;
}

/** A value as people read it in `plan`: strings quoted, functions as "a function". */
export function showValue(value: unknown): string {
  if (typeof value === 'function') return 'a function of the entity';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}`;
  if (value instanceof Key || value instanceof Date) return String(value instanceof Date ? value.toISOString() : value);
  const json = JSON.stringify(jsonOf(value));
  return json.length > 60 ? `${json.slice(0, 57)}...` : json;
}

/** " in namespaces 'a', 'b' where x = 1", or '' for the default namespace and no filter. */
export function showScope(scope: Scope): string {
  const parts: string[] = [];
  if (scope.namespaces === '*') parts.push('in every namespace');
  else if (scope.namespaces.length > 1 || scope.namespaces[0] !== '') parts.push(`in namespace${scope.namespaces.length > 1 ? 's' : ''} ${scope.namespaces.map((n) => `'${n}'`).join(', ')}`);
  if (scope.filters.length > 0) parts.push(`where ${scope.filters.map((f) => `${f.property} ${f.op} ${showValue(f.value)}`).join(' and ')}`);
  // What undo costs, where the plan shows it: one more write per entity changed, as large as the entity was.
  if (scope.undo) parts.push(`(keeping before-images for ${scope.undo.retain}: one more write per changed entity, of its size before)`);
  return parts.length ? ` ${parts.join(' ')}` : '';
}
