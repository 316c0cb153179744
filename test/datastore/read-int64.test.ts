import { Reader, Writer } from 'protobufjs/minimal';
import { readInt64 } from '../../src/datastore/packed-keys';

describe('readInt64', () => {
  // Around each point where the reading changes: 2^49 (the old number path's end), 2^53 (a double's exact end), 2^63 and the negatives (ten bytes).
  const values = [
    '0',
    '1',
    '127',
    '128',
    '562949953421311',
    '562949953421312',
    '1733577600123456',
    '9007199254740991',
    '9007199254740992',
    '9007199254740993',
    '18014398509481985',
    '9223372036854775807',
    '-1',
    '-2',
    '-9007199254740993',
    '-9223372036854775808',
  ];

  it('reads every int64 exactly, as protobufjs wrote it, and leaves the reader after it', () => {
    const writer = Writer.create();
    for (const value of values) writer.int64(value);
    writer.uint32(42);
    const reader = Reader.create(Buffer.from(writer.finish()));
    expect(values.map(() => readInt64(reader))).toEqual(values);
    expect(reader.uint32()).toBe(42);
  });

  it('refuses a varint cut short', () => {
    const bytes = Buffer.from(Writer.create().int64('1733577600123456').finish());
    expect(() => readInt64(Reader.create(bytes.subarray(0, bytes.length - 1)))).toThrow('runs past the end');
  });
});
