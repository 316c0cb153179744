/**
 * A protobuf writer into one growing buffer, for the requests and mutations this package encodes itself.
 * protobufjs's Writer queues an operation object per field and a state per nested message, then copies
 * them all out at the end: at a batch's thousands of fields that garbage was the largest part of encoding.
 * Here a nested message reserves one byte for its length, and the rare one past 127 bytes is moved up.
 */
export class ProtoWriter {
  private buf: Buffer;
  private pos = 0;
  /** Where each open nested message's length byte lies, the innermost at `depth - 1`: room for a mutation's usual depth made at once, not grown by each writer's first pushes. */
  private readonly open: number[] = [0, 0, 0, 0, 0, 0, 0, 0];
  private depth = 0;

  constructor(capacity = 256) {
    this.buf = Buffer.allocUnsafe(Math.max(16, capacity));
  }

  uint32(value: number): this {
    this.reserve(5);
    let n = value >>> 0;
    while (n > 127) {
      this.buf[this.pos++] = (n & 127) | 128;
      n >>>= 7;
    }
    this.buf[this.pos++] = n;
    return this;
  }

  /** A negative int32 takes ten bytes, sign-extended to 64 bits, as protobuf encodes it. */
  int32(value: number): this {
    const n = value | 0;
    return n < 0 ? this.int64(n) : this.uint32(n);
  }

  /** An int64 from a number (exact within 2^53), a decimal string or bigint (any int64), or a Long as gax may hold one. */
  int64(value: number | string | bigint | { toString(): string }): this {
    if (typeof value === 'object') return this.int64(value.toString());
    if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) {
      this.reserve(8);
      let n = value;
      while (n > 127) {
        this.buf[this.pos++] = (n % 128) | 128;
        n = Math.floor(n / 128);
      }
      this.buf[this.pos++] = n;
      return this;
    }
    if (typeof value === 'string' && isShortDecimal(value)) return this.int64(Number(value));
    this.reserve(10);
    let big = BigInt.asUintN(64, BigInt(value));
    while (big > 127n) {
      this.buf[this.pos++] = Number(big & 127n) | 128;
      big >>= 7n;
    }
    this.buf[this.pos++] = Number(big);
    return this;
  }

  bool(value: boolean): this {
    this.reserve(1);
    this.buf[this.pos++] = value ? 1 : 0;
    return this;
  }

  double(value: number): this {
    this.reserve(8);
    this.pos = this.buf.writeDoubleLE(value, this.pos);
    return this;
  }

  /** A length-delimited UTF-8 string. */
  string(value: string): this {
    // At most 3 bytes a UTF-16 unit: a string this short has a one-byte length, written after the text.
    if (value.length <= 42) {
      this.reserve(1 + value.length * 3);
      // Names, kinds and short values are mostly ASCII: copied here, a byte a unit, rather than through
      // Buffer.write, whose call into C++ cost more than the copy (a batch writes thousands of them).
      const start = this.pos + 1;
      let i = 0;
      for (; i < value.length; i++) {
        const unit = value.charCodeAt(i);
        if (unit > 127) break;
        this.buf[start + i] = unit;
      }
      const written = i === value.length ? i : i + this.buf.write(value.slice(i), start + i);
      this.buf[this.pos] = written;
      this.pos += 1 + written;
      return this;
    }
    const length = Buffer.byteLength(value);
    this.uint32(length).reserve(length);
    this.pos += this.buf.write(value, this.pos);
    return this;
  }

  /** Length-delimited bytes; a string is base64, as protobufjs and gax take it. */
  bytes(value: Uint8Array | string): this {
    const bytes = typeof value === 'string' ? Buffer.from(value, 'base64') : value;
    return this.uint32(bytes.length).raw(bytes);
  }

  /** Bytes already encoded (fields of the message being written), as they are: no tag, no length. */
  raw(bytes: Uint8Array): this {
    this.reserve(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
    return this;
  }

  /** Starts a nested message, ended by ldelim. */
  fork(): this {
    this.reserve(1);
    this.open[this.depth++] = this.pos++;
    return this;
  }

  /** Ends the nested message begun by the last open fork, writing its length before it. */
  ldelim(): this {
    if (this.depth === 0) throw new Error('ProtoWriter.ldelim without a fork.');
    const at = this.open[--this.depth];
    const length = this.pos - at - 1;
    if (length < 128) {
      this.buf[at] = length;
      return this;
    }
    const extra = varintSize(length) - 1;
    this.reserve(extra);
    this.buf.copyWithin(at + 1 + extra, at + 1, this.pos);
    this.pos += extra;
    let n = length;
    let i = at;
    while (n > 127) {
      this.buf[i++] = (n & 127) | 128;
      n >>>= 7;
    }
    this.buf[i] = n;
    return this;
  }

  /** How many bytes are written. */
  get length(): number {
    return this.pos;
  }

  /** The bytes written from `from` on: a view, good until the next write. */
  view(from: number): Buffer {
    return this.buf.subarray(from, this.pos);
  }

  /** Drops the bytes written from `length` on (outside any open nested message). */
  truncate(length: number): void {
    this.pos = Math.min(this.pos, length);
  }

  /** The bytes written: a view of the writer's buffer, which is not written again. */
  finish(): Buffer {
    if (this.depth > 0) throw new Error('ProtoWriter.finish with a nested message left open.');
    return this.buf.subarray(0, this.pos);
  }

  private reserve(bytes: number): void {
    if (this.pos + bytes <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + bytes));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
}

/** 1 to 15 decimal digits: a safe integer, as a key's id mostly is (checked by hand: a regular expression's test cost an allocation per id). */
function isShortDecimal(text: string): boolean {
  if (text.length === 0 || text.length > 15) return false;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 48 || unit > 57) return false;
  }
  return true;
}

function varintSize(n: number): number {
  return n < 128 ? 1 : n < 16384 ? 2 : n < 2097152 ? 3 : n < 268435456 ? 4 : 5;
}
