import { readFileSync } from 'node:fs';
import protobuf from 'protobufjs';

/** An entity a commit writes, as the hot-document report names it. */
export interface WrittenKey {
  projectId: string;
  databaseId: string;
  namespace: string;
  kind: string;
  /** The key's path, `Kind:id` or `Kind:"name"` per element, joined by `/`. */
  path: string;
}

interface KeyObject {
  partitionId?: { projectId?: string; databaseId?: string; namespaceId?: string };
  path?: { kind?: string; id?: string; name?: string }[];
}

interface CommitFields {
  mutations: ReadonlySet<number>;
  /** insert, update and upsert: an Entity, whose key is field `entityKey`. */
  entityWrites: ReadonlySet<number>;
  /** delete: a Key. */
  keyWrite: number;
  entityKey: ReadonlySet<number>;
  key: protobuf.Type;
}

let cached: CommitFields | undefined;

/** The field numbers and the Key type, from the protos @google-cloud/datastore ships: the proxy and the clients cannot disagree. */
function load(): CommitFields {
  if (cached) return cached;
  const json = JSON.parse(readFileSync(require.resolve('@google-cloud/datastore/build/protos/protos.json'), 'utf8')) as protobuf.INamespace;
  const root = protobuf.Root.fromJSON(json);
  const mutation = root.lookupType('google.datastore.v1.Mutation').fields;
  cached = {
    mutations: new Set([root.lookupType('google.datastore.v1.CommitRequest').fields.mutations.id]),
    entityWrites: new Set([mutation.insert.id, mutation.update.id, mutation.upsert.id]),
    keyWrite: mutation.delete.id,
    entityKey: new Set([root.lookupType('google.datastore.v1.Entity').fields.key.id]),
    key: root.lookupType('google.datastore.v1.Key'),
  };
  return cached;
}

/** The bytes of each length-delimited field among `ids` of a message, the others skipped unread. */
function* fieldBytes(bytes: Uint8Array, ids: ReadonlySet<number>): Generator<[number, Uint8Array]> {
  const reader = protobuf.Reader.create(bytes);
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    const id = tag >>> 3;
    if (ids.has(id) && (tag & 7) === 2) yield [id, reader.bytes()];
    else reader.skipType(tag & 7);
  }
}

/**
 * The keys a CommitRequest writes (insert, update, upsert or delete), read from its bytes: only the
 * mutations' keys are decoded, the entities' properties skipped, as a commit may carry megabytes of them.
 */
export function commitWrites(request: Uint8Array): WrittenKey[] {
  const fields = load();
  const writes = new Set([...fields.entityWrites, fields.keyWrite]);
  const keys: WrittenKey[] = [];
  for (const [, mutation] of fieldBytes(request, fields.mutations)) {
    for (const [id, payload] of fieldBytes(mutation, writes)) {
      const keyBytes = id === fields.keyWrite ? payload : fieldBytes(payload, fields.entityKey).next().value?.[1];
      if (keyBytes) keys.push(writtenKey(fields.key.toObject(fields.key.decode(keyBytes), { longs: String }) as KeyObject));
    }
  }
  return keys;
}

function writtenKey(key: KeyObject): WrittenKey {
  const path = key.path ?? [];
  return {
    projectId: key.partitionId?.projectId ?? '',
    databaseId: key.partitionId?.databaseId ?? '',
    namespace: key.partitionId?.namespaceId ?? '',
    kind: path.at(-1)?.kind ?? '',
    path: path.map((element) => `${element.kind ?? ''}:${element.name !== undefined ? JSON.stringify(element.name) : (element.id ?? '')}`).join('/'),
  };
}
