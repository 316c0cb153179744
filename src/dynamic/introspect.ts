import { RESERVED_KIND_PREFIX } from '../control';
import { describeKind, listKinds, listProperties, type Datastore, type KindShape, type ValueType } from '../datastore';
import { renameOf, type FieldSpec, type FieldType, type Model } from '../model';
import type { ModelFactory } from './factory';

/** Where a model comes from: `defineModel` in the app's modules, or a runtime definition of the ModelFactory. */
export type ModelOrigin = 'defineModel' | 'runtime';

export interface DescribedModel {
  /** The kind for a defineModel model; the definition's name for a runtime one. */
  name: string;
  origin: ModelOrigin;
  model: Model;
}

export interface StoredVersusModelsOptions {
  namespace: string;
  /** Entities read per kind, for counts, types and example keys. */
  sample: number;
  /** Kinds to look at besides the models' own: on a backend that lists no kinds, the only way to find unknown ones. */
  kinds?: readonly string[];
}

export interface OrphanedProperty {
  property: string;
  /** Sampled entities holding it; 0 when only the metadata lists it (held by entities outside the sample). */
  count: number;
  /** The metadata's representations (INT64, STRING…), where the backend answers `__property__`. */
  representations?: string[];
}

export interface MismatchedProperty {
  field: string;
  /** The stored property: the field's name, or the name it is renamed from. */
  property: string;
  expected: string;
  stored: ValueType;
  count: number;
  examples: string[];
}

export interface KindVersusModels {
  kind: string;
  models: { name: string; origin: ModelOrigin }[];
  sampled: number;
  orphaned: OrphanedProperty[];
  mismatched: MismatchedProperty[];
  /** Fields no sampled entity holds (under the field's name or the name it is renamed from) and the metadata does not list. */
  neverStored: string[];
}

export interface UnknownKind {
  kind: string;
  sampled: number;
  properties: string[];
}

export interface StoredVersusModels {
  namespace: string;
  source: {
    /** 'metadata' where `__kind__` lists the stored kinds; else only the models' kinds and those named. */
    kinds: 'metadata' | 'models and arguments';
    properties: string;
    types: string;
  };
  /** Said when the backend cannot list kinds, so that an empty unknownKinds is not read as "none". */
  note?: string;
  unknownKinds: UnknownKind[];
  /** Kinds named as arguments that no model describes and no entity holds. */
  notStored: string[];
  kinds: KindVersusModels[];
}

/**
 * Which stored types a field reads without a type error: what its model writes, plus what the model's load
 * converts (an integer into a double field) or accepts as JSON (json fields store text but read any JSON value).
 */
const READS: Record<FieldType, readonly ValueType[]> = {
  string: ['string'],
  integer: ['integer'],
  double: ['double', 'integer'],
  boolean: ['boolean'],
  timestamp: ['timestamp'],
  key: ['key'],
  json: ['string', 'integer', 'double', 'boolean', 'entity', 'array'],
  entity: ['entity'],
  array: ['array'],
  blob: ['blob'],
  geoPoint: ['geoPoint'],
};

function fits(spec: FieldSpec, stored: ValueType): boolean {
  return stored === 'null' ? spec.nullable === true : READS[spec.type].includes(stored);
}

function expectedOf(spec: FieldSpec): string {
  const type = spec.type === 'array' && spec.items ? `array of ${spec.items.type}` : spec.type;
  return spec.nullable ? `${type} or null` : type;
}

/** The current model of every runtime definition the factory holds, deleted ones left out. */
export async function runtimeModels(factory: ModelFactory): Promise<DescribedModel[]> {
  const out: DescribedModel[] = [];
  for (const summary of await factory.list()) {
    if (!summary.deleted) out.push({ name: summary.name, origin: 'runtime', model: await factory.get(summary.name) });
  }
  return out;
}

/**
 * Compares what a namespace stores with the models: kinds no model describes, properties no field uses,
 * stored types a field would not read, and fields nothing stores. Kinds and property names come from the
 * metadata where the backend answers it (`__kind__`, `__property__`), and from a sample of `sample` entities
 * per kind besides: the metadata lists only indexed properties and gives no per-entity types.
 */
export async function compareWithModels(store: Datastore, models: readonly DescribedModel[], options: StoredVersusModelsOptions): Promise<StoredVersusModels> {
  const { namespace, sample } = options;
  const byKind = new Map<string, DescribedModel[]>();
  for (const described of models) byKind.set(described.model.kind, [...(byKind.get(described.model.kind) ?? []), described]);
  const listed = await listKinds(store, namespace);
  const metadata = listed ? await listProperties(store, namespace) : undefined;
  const given = options.kinds ?? [];
  const kinds = [...new Set([...(listed ?? []), ...byKind.keys(), ...given])].filter((kind) => !kind.startsWith(RESERVED_KIND_PREFIX)).sort();
  const sampleText = `sample of ${sample} per kind`;
  const result: StoredVersusModels = {
    namespace,
    source: { kinds: listed ? 'metadata' : 'models and arguments', properties: metadata ? `metadata and a ${sampleText}` : sampleText, types: sampleText },
    ...(!listed && {
      note: 'This backend answers no metadata queries (the Firestore-mode emulator), so kinds no model describes cannot be discovered: only kinds named as arguments are checked for that.',
    }),
    unknownKinds: [],
    notStored: [],
    kinds: [],
  };
  for (const kind of kinds) {
    const shape = await describeKind(store, kind, namespace, sample);
    const described = byKind.get(kind);
    const listedProperties = metadata?.get(kind) ?? new Map<string, string[]>();
    if (described) {
      result.kinds.push(compareKind(shape, described, listedProperties));
    } else if (shape.sampled > 0 || listed?.includes(kind)) {
      result.unknownKinds.push({ kind, sampled: shape.sampled, properties: [...new Set([...shape.properties.map((p) => p.name), ...listedProperties.keys()])].sort() });
    } else {
      result.notStored.push(kind);
    }
  }
  return result;
}

function compareKind(shape: KindShape, described: readonly DescribedModel[], listedProperties: ReadonlyMap<string, string[]>): KindVersusModels {
  // Several models may describe one kind (a defineModel and a runtime definition): a property is in use if any uses it.
  const readers = new Map<string, { field: string; spec: FieldSpec }[]>();
  const fields: { field: string; properties: string[] }[] = [];
  for (const { model } of described) {
    for (const [field, spec] of Object.entries(model.fields)) {
      const rename = renameOf(spec);
      const properties = rename ? [field, rename.name] : [field];
      fields.push({ field, properties });
      for (const property of properties) readers.set(property, [...(readers.get(property) ?? []), { field, spec }]);
    }
  }
  const sampledProperties = new Map(shape.properties.map((p) => [p.name, p]));
  const orphaned: OrphanedProperty[] = [];
  for (const property of [...new Set([...sampledProperties.keys(), ...listedProperties.keys()])].sort()) {
    if (readers.has(property)) continue;
    const representations = listedProperties.get(property);
    orphaned.push({ property, count: sampledProperties.get(property)?.present ?? 0, ...(representations && { representations }) });
  }
  const mismatched: MismatchedProperty[] = [];
  for (const [property, fieldsReading] of readers) {
    const stored = sampledProperties.get(property);
    if (!stored) continue;
    for (const [type, count] of Object.entries(stored.types) as [ValueType, number][]) {
      if (fieldsReading.some(({ spec }) => fits(spec, type))) continue;
      const { field, spec } = fieldsReading[0];
      mismatched.push({ field, property, expected: expectedOf(spec), stored: type, count, examples: stored.examples[type] ?? [] });
    }
  }
  const neverStored = [...new Set(fields.filter((f) => !f.properties.some((p) => sampledProperties.has(p) || listedProperties.has(p))).map((f) => f.field))];
  return {
    kind: shape.kind,
    models: described.map(({ name, origin }) => ({ name, origin })),
    sampled: shape.sampled,
    orphaned,
    mismatched: mismatched.sort((a, b) => a.property.localeCompare(b.property) || a.stored.localeCompare(b.stored)),
    neverStored,
  };
}
