import { writeKeyProto } from './key-writer';
import type { ProtoWriter } from './proto-writer';
import type { ValueProto } from './values';
import { BYTES, FIXED64, tag, VARINT } from './wire';

/*
 * google.datastore.v1.Value written from the plain objects this package holds (as value-reader.ts reads
 * them, as values.ts encodes them, or as a hand-built proto gives them), field for field what gax would
 * send: a oneof member is written whenever it is set, its default too; `meaning` and `excludeFromIndexes`
 * only when not their proto3 defaults, which the server reads the same as absent.
 */

/** A Value: null (11), boolean (1), integer (2), double (3), timestamp (10), key (5), string (17), blob (18), geo point (8), entity (6), array (9), meaning (14), excluded (19). */
export function writeValue(writer: ProtoWriter, value: ValueProto): void {
  if (value.nullValue != null) writer.uint32(tag(11, VARINT)).int32(0);
  if (value.booleanValue != null) writer.uint32(tag(1, VARINT)).bool(value.booleanValue);
  if (value.integerValue != null) writer.uint32(tag(2, VARINT)).int64(value.integerValue);
  if (value.doubleValue != null) writer.uint32(tag(3, FIXED64)).double(Number(value.doubleValue));
  if (value.timestampValue != null) {
    const { seconds, nanos } = value.timestampValue;
    writer.uint32(tag(10, BYTES)).fork();
    if (seconds != null) writer.uint32(tag(1, VARINT)).int64(seconds);
    if (nanos) writer.uint32(tag(2, VARINT)).int32(nanos);
    writer.ldelim();
  }
  if (value.keyValue != null) writeKeyProto(writer.uint32(tag(5, BYTES)).fork(), value.keyValue).ldelim();
  if (value.stringValue != null) writer.uint32(tag(17, BYTES)).string(value.stringValue);
  if (value.blobValue != null) writer.uint32(tag(18, BYTES)).bytes(value.blobValue);
  if (value.geoPointValue != null) {
    const { latitude, longitude } = value.geoPointValue;
    writer.uint32(tag(8, BYTES)).fork();
    if (latitude != null) writer.uint32(tag(1, FIXED64)).double(latitude);
    if (longitude != null) writer.uint32(tag(2, FIXED64)).double(longitude);
    writer.ldelim();
  }
  if (value.entityValue != null) {
    writer.uint32(tag(6, BYTES)).fork();
    if (value.entityValue.key != null) writeKeyProto(writer.uint32(tag(1, BYTES)).fork(), value.entityValue.key).ldelim();
    writeProperties(writer, value.entityValue.properties ?? {});
    writer.ldelim();
  }
  if (value.arrayValue != null) {
    writer.uint32(tag(9, BYTES)).fork();
    for (const item of value.arrayValue.values ?? []) {
      writer.uint32(tag(1, BYTES)).fork();
      writeValue(writer, item);
      writer.ldelim();
    }
    writer.ldelim();
  }
  if (value.meaning) writer.uint32(tag(14, VARINT)).int32(value.meaning);
  if (value.excludeFromIndexes) writer.uint32(tag(19, VARINT)).bool(true);
}

/** An Entity's properties (3): map entries of name (1) and Value (2). */
function writeProperties(writer: ProtoWriter, properties: Record<string, ValueProto>): void {
  for (const name in properties) writeProperty(writer, name, properties[name]);
}

/** One Entity.properties (3) map entry: name (1) and Value (2). */
export function writeProperty(writer: ProtoWriter, name: string, value: ValueProto): void {
  writer.uint32(tag(3, BYTES)).fork().uint32(tag(1, BYTES)).string(name).uint32(tag(2, BYTES)).fork();
  writeValue(writer, value);
  writer.ldelim().ldelim();
}
