import { GrpcCode, grpcCode } from './retry';
import type { Datastore } from './store';
import type { ValueType } from './values';

export interface PropertyShape {
  name: string;
  /** In how many sampled entities the property is present. */
  present: number;
  types: Partial<Record<ValueType, number>>;
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
      const shape = shapes.get(name) ?? { name, present: 0, types: {}, indexed: 0, unindexed: 0 };
      const type = entity.typeOf(name)!;
      shape.present++;
      shape.types[type] = (shape.types[type] ?? 0) + 1;
      if (entity.isIndexed(name)) shape.indexed++;
      else shape.unindexed++;
      shapes.set(name, shape);
    }
  }
  return { kind, namespace, sampled, properties: [...shapes.values()].sort((a, b) => a.name.localeCompare(b.name)) };
}

/** User kinds in a namespace, where the backend answers metadata queries; undefined otherwise. */
export async function listKinds(store: Datastore, namespace = ''): Promise<string[] | undefined> {
  try {
    const kinds: string[] = [];
    for await (const keys of store.keys({ kind: '__kind__', namespace })) for (const key of keys) if (key.name && !key.name.startsWith('__')) kinds.push(key.name);
    return kinds.sort();
  } catch (error) {
    if (grpcCode(error) === GrpcCode.INVALID_ARGUMENT || grpcCode(error) === GrpcCode.UNIMPLEMENTED) return undefined;
    throw error;
  }
}
