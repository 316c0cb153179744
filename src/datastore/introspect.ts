import { GrpcCode, grpcCode } from './retry';
import type { Datastore } from './store';
import type { ValueType } from './values';

/** Keys kept per property and type: enough to find an offending entity, few enough to print. */
const EXAMPLE_KEYS = 3;

export interface PropertyShape {
  name: string;
  /** In how many sampled entities the property is present. */
  present: number;
  types: Partial<Record<ValueType, number>>;
  /** The first few sampled keys holding each type, as `Kind:"name"` / `Kind:1` text. */
  examples: Partial<Record<ValueType, string[]>>;
  indexed: number;
  unindexed: number;
}

export interface KindShape {
  kind: string;
  namespace: string;
  sampled: number;
  properties: PropertyShape[];
}

/** The shape of a kind as stored: property names, types and index settings, from its first `sample` entities. */
export async function describeKind(store: Datastore, kind: string, namespace = '', sample = 500): Promise<KindShape> {
  const shapes = new Map<string, PropertyShape>();
  let sampled = 0;
  for await (const entity of store.query({ kind, namespace, limit: sample })) {
    sampled++;
    for (const name of entity.names()) {
      const shape = shapes.get(name) ?? { name, present: 0, types: {}, examples: {}, indexed: 0, unindexed: 0 };
      const type = entity.typeOf(name)!;
      shape.present++;
      shape.types[type] = (shape.types[type] ?? 0) + 1;
      const examples = (shape.examples[type] ??= []);
      if (examples.length < EXAMPLE_KEYS) examples.push(entity.key.toString());
      if (entity.isIndexed(name)) shape.indexed++;
      else shape.unindexed++;
      shapes.set(name, shape);
    }
  }
  return { kind, namespace, sampled, properties: [...shapes.values()].sort((a, b) => a.name.localeCompare(b.name)) };
}

/** User kinds in a namespace, where the backend answers metadata queries; undefined otherwise. */
export async function listKinds(store: Datastore, namespace = ''): Promise<string[] | undefined> {
  return unlessMetadataRejected(async () => {
    const kinds: string[] = [];
    for await (const keys of store.keys({ kind: '__kind__', namespace })) for (const key of keys) if (key.name && !key.name.startsWith('__')) kinds.push(key.name);
    return kinds.sort();
  });
}

/**
 * The indexed properties of every kind in a namespace with their representations (`INT64`, `STRING`,
 * `DOUBLE`, `BOOLEAN`, `REFERENCE`, `POINT`, `NULL`), from `__property__`; undefined where the backend answers
 * no metadata queries. Datastore lists only indexed properties there, and one representation covers several
 * types (INT64 is integers and timestamps, STRING strings and blobs), so it gives names, not types.
 */
export async function listProperties(store: Datastore, namespace = ''): Promise<Map<string, Map<string, string[]>> | undefined> {
  return unlessMetadataRejected(async () => {
    const kinds = new Map<string, Map<string, string[]>>();
    for await (const entity of store.query({ kind: '__property__', namespace })) {
      const kind = entity.key.parent?.name;
      const property = entity.key.name;
      if (!kind || !property || kind.startsWith('__')) continue;
      const representations = entity.get('property_representation');
      const properties = kinds.get(kind) ?? new Map<string, string[]>();
      properties.set(property, Array.isArray(representations) ? representations.filter((r): r is string => typeof r === 'string') : []);
      kinds.set(kind, properties);
    }
    return kinds;
  });
}

/** The Firestore-mode emulator rejects metadata queries outright: that means "not answered here", not a failure. */
async function unlessMetadataRejected<T>(query: () => Promise<T>): Promise<T | undefined> {
  try {
    return await query();
  } catch (error) {
    if (grpcCode(error) === GrpcCode.INVALID_ARGUMENT || grpcCode(error) === GrpcCode.UNIMPLEMENTED) return undefined;
    throw error;
  }
}
