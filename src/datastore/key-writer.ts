import type { google } from '@google-cloud/datastore/build/protos/protos';
import type { ProtoWriter } from './proto-writer';
import type { Key } from './keys';
import { BYTES, tag, VARINT } from './wire';

/** Key: partition (1: project 2, database 3, namespace 4), path (2: kind 1, id 2, name 3). */
export function writeKey(writer: ProtoWriter, key: Key, projectId: string, databaseId: string): void {
  writer.uint32(tag(1, BYTES)).fork();
  if (projectId) writer.uint32(tag(2, BYTES)).string(projectId);
  if (databaseId) writer.uint32(tag(3, BYTES)).string(databaseId);
  if (key.namespace) writer.uint32(tag(4, BYTES)).string(key.namespace);
  writer.ldelim();
  // Indexed: this runs for every key a run writes or reads, and an iterator was garbage each time.
  for (let i = 0; i < key.path.length; i++) {
    const e = key.path[i];
    writer.uint32(tag(2, BYTES)).fork().uint32(tag(1, BYTES)).string(e.kind);
    if (e.id !== undefined) writer.uint32(tag(2, VARINT)).int64(e.id);
    else if (e.name !== undefined) writer.uint32(tag(3, BYTES)).string(e.name);
    writer.ldelim();
  }
}

/** A Key proto, as values and embedded entities hold one (value-writer.ts): partition (1: project 2, database 3, namespace 4), path (2: kind 1, id 2, name 3). */
export function writeKeyProto(writer: ProtoWriter, key: google.datastore.v1.IKey): ProtoWriter {
  const partition = key.partitionId;
  if (partition != null) {
    writer.uint32(tag(1, BYTES)).fork();
    if (partition.projectId) writer.uint32(tag(2, BYTES)).string(partition.projectId);
    if (partition.databaseId) writer.uint32(tag(3, BYTES)).string(partition.databaseId);
    if (partition.namespaceId) writer.uint32(tag(4, BYTES)).string(partition.namespaceId);
    writer.ldelim();
  }
  for (const element of key.path ?? []) {
    writer.uint32(tag(2, BYTES)).fork();
    if (element.kind) writer.uint32(tag(1, BYTES)).string(element.kind);
    if (element.id != null) writer.uint32(tag(2, VARINT)).int64(element.id);
    if (element.name != null) writer.uint32(tag(3, BYTES)).string(element.name);
    writer.ldelim();
  }
  return writer;
}
