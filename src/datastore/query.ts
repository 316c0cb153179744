import type { google } from '@google-cloud/datastore/build/protos/protos';
import { DsMigrateError } from '../errors';
import { Key } from './keys';
import { encodeValue, type Value } from './values';

export type FilterOp = '=' | '!=' | '<' | '<=' | '>' | '>=' | 'IN' | 'NOT_IN';

export interface PropertyFilter {
  property: string;
  op: FilterOp;
  value: Value;
}

export interface QuerySpec {
  kind: string;
  namespace?: string;
  filters?: readonly PropertyFilter[];
  /** Keys strictly after `after` and strictly before `before` (key-range shards). */
  after?: Key;
  /** Keys at or after `from`. */
  from?: Key;
  before?: Key;
  /** Keys at or before `through`. */
  through?: Key;
  /** Only keys under this ancestor. */
  ancestor?: Key;
  keysOnly?: boolean;
  /** Sort by key (the default when a key range is given). */
  orderByKey?: boolean;
  order?: readonly { property: string; direction?: 'ASCENDING' | 'DESCENDING' }[];
  limit?: number;
}

const OPS: Record<FilterOp, google.datastore.v1.PropertyFilter.Operator> = {
  '=': 'EQUAL' as unknown as google.datastore.v1.PropertyFilter.Operator,
  '!=': 'NOT_EQUAL' as unknown as google.datastore.v1.PropertyFilter.Operator,
  '<': 'LESS_THAN' as unknown as google.datastore.v1.PropertyFilter.Operator,
  '<=': 'LESS_THAN_OR_EQUAL' as unknown as google.datastore.v1.PropertyFilter.Operator,
  '>': 'GREATER_THAN' as unknown as google.datastore.v1.PropertyFilter.Operator,
  '>=': 'GREATER_THAN_OR_EQUAL' as unknown as google.datastore.v1.PropertyFilter.Operator,
  IN: 'IN' as unknown as google.datastore.v1.PropertyFilter.Operator,
  NOT_IN: 'NOT_IN' as unknown as google.datastore.v1.PropertyFilter.Operator,
};

export function buildQuery(spec: QuerySpec, projectId: string, databaseId: string): google.datastore.v1.IQuery {
  if (!spec.kind) throw new DsMigrateError('BAD_INPUT', 'A query needs a kind.');
  const filters: google.datastore.v1.IFilter[] = [];
  const keyFilter = (op: FilterOp, key: Key) => {
    if (key.namespace !== (spec.namespace ?? '')) {
      throw new DsMigrateError('BAD_INPUT', `Key ${key} bounds a query in namespace "${spec.namespace ?? ''}".`, { kind: spec.kind });
    }
    filters.push({ propertyFilter: { property: { name: '__key__' }, op: OPS[op], value: { keyValue: key.toProto(projectId, databaseId) } } });
  };
  if (spec.after) keyFilter('>', spec.after);
  if (spec.from) keyFilter('>=', spec.from);
  if (spec.before) keyFilter('<', spec.before);
  if (spec.through) keyFilter('<=', spec.through);
  if (spec.ancestor) {
    filters.push({
      propertyFilter: {
        property: { name: '__key__' },
        op: 'HAS_ANCESTOR' as unknown as google.datastore.v1.PropertyFilter.Operator,
        value: { keyValue: spec.ancestor.toProto(projectId, databaseId) },
      },
    });
  }
  for (const f of spec.filters ?? []) {
    const value = encodeValue(f.value, { projectId, databaseId }, `filter on ${f.property}`);
    filters.push({ propertyFilter: { property: { name: f.property }, op: OPS[f.op], value } });
  }
  const ranged = spec.after !== undefined || spec.from !== undefined || spec.before !== undefined || spec.through !== undefined;
  const order = spec.order?.map((o) => ({ property: { name: o.property }, direction: (o.direction ?? 'ASCENDING') as unknown as google.datastore.v1.PropertyOrder.Direction }));
  return {
    kind: [{ name: spec.kind }],
    filter: filters.length === 0 ? undefined : filters.length === 1 ? filters[0] : { compositeFilter: { op: 'AND' as unknown as google.datastore.v1.CompositeFilter.Operator, filters } },
    order: order ?? (spec.orderByKey || ranged ? [{ property: { name: '__key__' }, direction: 'ASCENDING' as unknown as google.datastore.v1.PropertyOrder.Direction }] : undefined),
    projection: spec.keysOnly ? [{ property: { name: '__key__' } }] : undefined,
    limit: spec.limit !== undefined ? { value: spec.limit } : undefined,
  };
}
