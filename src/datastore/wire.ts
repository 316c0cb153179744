/** Protobuf wire types, and a field's tag: what the codecs that read and write Datastore's bytes themselves share. */
export const VARINT = 0;
export const FIXED64 = 1;
export const BYTES = 2;

export const tag = (field: number, wire: number): number => (field << 3) | wire;
