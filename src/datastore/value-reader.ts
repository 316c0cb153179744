import type { Reader } from 'protobufjs/minimal';
import { lengthDelimitedEnd, readInt64 } from './packed-keys';
import type { ValueProto } from './values';
import { BYTES, FIXED64, tag, VARINT } from './wire';

/*
 * google.datastore.v1.Value read from the wire straight into the plain object google-gax makes of it
 * (@grpc/proto-loader's options: int64 as decimal strings, enums by name, defaults filled in, the oneof
 * named in `valueType`), so that what a lookup decodes writes back as it was read. protobufjs reads
 * a message and then copies it into that object; for a whole-entity lookup (a before-image's read) the
 * two passes and their garbage were most of a batch's decoding.
 */

const NULL_VALUE = tag(11, VARINT);
const BOOLEAN = tag(1, VARINT);
const INTEGER = tag(2, VARINT);
const DOUBLE = tag(3, FIXED64);
const TIMESTAMP = tag(10, BYTES);
const KEY = tag(5, BYTES);
const STRING = tag(17, BYTES);
const BLOB = tag(18, BYTES);
const GEO_POINT = tag(8, BYTES);
const ENTITY = tag(6, BYTES);
const ARRAY = tag(9, BYTES);
const MEANING = tag(14, VARINT);
const EXCLUDE = tag(19, VARINT);

type Plain = Record<string, unknown>;

/** A Value from `reader.pos` to `end`. */
export function readValue(reader: Reader, end: number): ValueProto {
  const value: Plain = { meaning: 0, excludeFromIndexes: false };
  let one: string | undefined;
  while (reader.pos < end) {
    const t = reader.uint32();
    switch (t) {
      case NULL_VALUE: {
        const n = reader.uint32();
        value[(one = 'nullValue')] = n === 0 ? 'NULL_VALUE' : n;
        break;
      }
      case BOOLEAN:
        value[(one = 'booleanValue')] = reader.bool();
        break;
      case INTEGER:
        value[(one = 'integerValue')] = readInt64(reader);
        break;
      case DOUBLE:
        value[(one = 'doubleValue')] = reader.double();
        break;
      case TIMESTAMP:
        value[(one = 'timestampValue')] = readTimestamp(reader, lengthDelimitedEnd(reader));
        break;
      case KEY:
        value[(one = 'keyValue')] = readKeyObject(reader, lengthDelimitedEnd(reader));
        break;
      case STRING:
        value[(one = 'stringValue')] = reader.string();
        break;
      case BLOB:
        value[(one = 'blobValue')] = reader.bytes();
        break;
      case GEO_POINT:
        value[(one = 'geoPointValue')] = readLatLng(reader, lengthDelimitedEnd(reader));
        break;
      case ENTITY:
        value[(one = 'entityValue')] = readEntityObject(reader, lengthDelimitedEnd(reader));
        break;
      case ARRAY:
        value[(one = 'arrayValue')] = readArray(reader, lengthDelimitedEnd(reader));
        break;
      case MEANING:
        value.meaning = reader.int32();
        break;
      case EXCLUDE:
        value.excludeFromIndexes = reader.bool();
        break;
      default:
        reader.skipType(t & 7);
    }
  }
  if (one !== undefined) value.valueType = one;
  return value as ValueProto;
}

/** The properties of an Entity message (its field 3), from `reader.pos` to `end`; the key and anything else are skipped. */
export function readProperties(reader: Reader, end: number): Record<string, ValueProto> {
  const properties: Record<string, ValueProto> = {};
  while (reader.pos < end) {
    const t = reader.uint32();
    if (t === tag(3, BYTES)) readPropertyEntry(reader, lengthDelimitedEnd(reader), properties);
    else reader.skipType(t & 7);
  }
  return properties;
}

/** Entity.properties map entries, name (1) and Value (2), from `reader.pos` to `end` into `properties`. */
export function readPropertyEntry(reader: Reader, end: number, properties: Record<string, ValueProto>): void {
  let name = '';
  let value: ValueProto | undefined;
  while (reader.pos < end) {
    const t = reader.uint32();
    if (t === tag(1, BYTES)) name = reader.string();
    else if (t === tag(2, BYTES)) value = readValue(reader, lengthDelimitedEnd(reader));
    else reader.skipType(t & 7);
  }
  // A map entry without its value holds the default Value.
  properties[name] = value ?? readValue(reader, reader.pos);
}

/** Entity: key (1), properties (3). */
function readEntityObject(reader: Reader, end: number): Plain {
  const entity: Plain = { key: null };
  const properties: Record<string, ValueProto> = {};
  while (reader.pos < end) {
    const t = reader.uint32();
    if (t === tag(1, BYTES)) entity.key = readKeyObject(reader, lengthDelimitedEnd(reader));
    else if (t === tag(3, BYTES)) readPropertyEntry(reader, lengthDelimitedEnd(reader), properties);
    else reader.skipType(t & 7);
  }
  entity.properties = properties;
  return entity;
}

/** ArrayValue: values (1). */
function readArray(reader: Reader, end: number): Plain {
  const values: ValueProto[] = [];
  while (reader.pos < end) {
    const t = reader.uint32();
    if (t === tag(1, BYTES)) values.push(readValue(reader, lengthDelimitedEnd(reader)));
    else reader.skipType(t & 7);
  }
  return { values };
}

/** google.protobuf.Timestamp: seconds (1), nanos (2). */
function readTimestamp(reader: Reader, end: number): Plain {
  const timestamp: Plain = { seconds: '0', nanos: 0 };
  while (reader.pos < end) {
    const t = reader.uint32();
    if (t === tag(1, VARINT)) timestamp.seconds = readInt64(reader);
    else if (t === tag(2, VARINT)) timestamp.nanos = reader.int32();
    else reader.skipType(t & 7);
  }
  return timestamp;
}

/** google.type.LatLng: latitude (1), longitude (2). */
function readLatLng(reader: Reader, end: number): Plain {
  const point: Plain = { latitude: 0, longitude: 0 };
  while (reader.pos < end) {
    const t = reader.uint32();
    if (t === tag(1, FIXED64)) point.latitude = reader.double();
    else if (t === tag(2, FIXED64)) point.longitude = reader.double();
    else reader.skipType(t & 7);
  }
  return point;
}

/** Key: partition_id (1: project 2, database 3, namespace 4), path (2: kind 1, id 2, name 3). */
function readKeyObject(reader: Reader, end: number): Plain {
  const key: Plain = { partitionId: null };
  const path: Plain[] = [];
  while (reader.pos < end) {
    const t = reader.uint32();
    if (t === tag(1, BYTES)) key.partitionId = readPartition(reader, lengthDelimitedEnd(reader));
    else if (t === tag(2, BYTES)) path.push(readPathElement(reader, lengthDelimitedEnd(reader)));
    else reader.skipType(t & 7);
  }
  key.path = path;
  return key;
}

function readPartition(reader: Reader, end: number): Plain {
  const partition: Plain = { projectId: '', databaseId: '', namespaceId: '' };
  while (reader.pos < end) {
    const t = reader.uint32();
    if (t === tag(2, BYTES)) partition.projectId = reader.string();
    else if (t === tag(3, BYTES)) partition.databaseId = reader.string();
    else if (t === tag(4, BYTES)) partition.namespaceId = reader.string();
    else reader.skipType(t & 7);
  }
  return partition;
}

function readPathElement(reader: Reader, end: number): Plain {
  const element: Plain = { kind: '' };
  while (reader.pos < end) {
    const t = reader.uint32();
    if (t === tag(1, BYTES)) element.kind = reader.string();
    else if (t === tag(2, VARINT)) {
      element.id = readInt64(reader);
      element.idType = 'id';
    } else if (t === tag(3, BYTES)) {
      element.name = reader.string();
      element.idType = 'name';
    } else reader.skipType(t & 7);
  }
  return element;
}
