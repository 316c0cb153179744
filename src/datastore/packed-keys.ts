import { Reader } from 'protobufjs/minimal';
import { Key, pathElement, type PathElement } from './keys';
import { BYTES, tag, VARINT } from './wire';

/** Keys in key order, held as objects (an array) or packed: what a shard is handed by its planner. */
export interface KeyList extends Iterable<Key> {
  readonly length: number;
  at(index: number): Key | undefined;
  slice(from: number, to?: number): KeyList;
}

/**
 * Keys kept as their wire bytes (google.datastore.v1.Key, about 40 bytes each) and decoded when used.
 * A Key object with its path, element and id string takes about 170 bytes on the heap, so a planner
 * holding one and a half pages of 100,000 keys for its shards would hold 26 MB of them; packed it
 * holds 6 MB, whatever the kind's size (src/sharding/splitter.ts bounds the pages).
 */
export class PackedKeys implements KeyList {
  static readonly EMPTY = new PackedKeys(new Uint8Array(0), new Uint32Array(0));

  /** `ends[i]` is where key i's bytes end; key i starts where key i - 1 ends. Made by PackedKeysBuilder. */
  constructor(
    private readonly bytes: Uint8Array,
    private readonly ends: Uint32Array,
  ) {}

  get length(): number {
    return this.ends.length;
  }

  /** Key `index`, decoded; undefined outside the list (as Array.prototype.at, without negative indexes). */
  at(index: number): Key | undefined {
    if (!(index >= 0 && index < this.ends.length)) return undefined;
    const start = index === 0 ? 0 : this.ends[index - 1];
    const reader = Reader.create(asBuffer(this.bytes.subarray(start, this.ends[index])));
    return readKey(reader, reader.len);
  }

  /** Keys `from` to `to` (exclusive), copied: a slice does not keep the rest of the page alive. */
  slice(from: number, to = this.length): PackedKeys {
    const first = Math.max(0, Math.min(from, this.length));
    const last = Math.max(first, Math.min(to, this.length));
    if (first === last) return PackedKeys.EMPTY;
    const base = first === 0 ? 0 : this.ends[first - 1];
    const ends = this.ends.slice(first, last);
    for (let i = 0; i < ends.length; i++) ends[i] -= base;
    return new PackedKeys(this.bytes.slice(base, this.ends[last - 1]), ends);
  }

  toArray(): Key[] {
    const keys: Key[] = [];
    for (const key of this) keys.push(key);
    return keys;
  }

  *[Symbol.iterator](): Iterator<Key> {
    const reader = Reader.create(asBuffer(this.bytes));
    for (let i = 0; i < this.ends.length; i++) yield readKey(reader, this.ends[i]);
  }

  static concat(parts: readonly PackedKeys[]): PackedKeys {
    if (parts.length === 1) return parts[0];
    const builder = new PackedKeysBuilder(parts.reduce((n, p) => n + (p.length === 0 ? 0 : p.ends[p.length - 1]), 0));
    for (const part of parts) {
      for (let i = 0; i < part.length; i++) builder.push(part.bytes, i === 0 ? 0 : part.ends[i - 1], part.ends[i]);
    }
    return builder.build();
  }
}

export class PackedKeysBuilder {
  private bytes: Uint8Array;
  private ends = new Uint32Array(64);
  private count = 0;
  private size = 0;

  constructor(capacityBytes: number) {
    this.bytes = new Uint8Array(Math.max(64, capacityBytes));
  }

  /** Appends one key's wire bytes, `source[start..end)`. */
  push(source: Uint8Array, start: number, end: number): void {
    const length = end - start;
    if (this.size + length > this.bytes.length) this.bytes = grown(this.bytes, this.size + length);
    if (this.count === this.ends.length) this.ends = grown(this.ends, this.count + 1);
    // Byte by byte: a key is some forty bytes, and a view of each to copy it cost an object per key of a run.
    const bytes = this.bytes;
    for (let from = start, to = this.size; from < end; from++, to++) bytes[to] = source[from];
    this.size += length;
    this.ends[this.count++] = this.size;
  }

  /** The keys pushed, in arrays trimmed to their size. */
  build(): PackedKeys {
    return this.count === 0 ? PackedKeys.EMPTY : new PackedKeys(this.bytes.slice(0, this.size), this.ends.slice(0, this.count));
  }
}

/** A Buffer over the same bytes: protobufjs reads a Buffer's strings natively, a Uint8Array's in JavaScript, char by char. */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function grown<T extends Uint8Array | Uint32Array>(array: T, needed: number): T {
  const next = new (array.constructor as new (length: number) => T)(Math.max(needed, array.length * 2));
  next.set(array);
  return next;
}

/** Skips to the next field tagged `wanted` before `end`: whether there is one (the reader then stands at its value). */
export function nextField(reader: Reader, end: number, wanted: number): boolean {
  while (reader.pos < end) {
    const field = reader.uint32();
    if (field === wanted) return true;
    reader.skipType(field & 7);
  }
  return false;
}

export function lengthDelimitedEnd(reader: Reader): number {
  const length = reader.uint32();
  return reader.pos + length;
}

const PARTITION = tag(1, BYTES);
const NAMESPACE = tag(4, BYTES);
const ELEMENT = tag(2, BYTES);
const KIND = tag(1, BYTES);
const ID = tag(2, VARINT);
const NAME = tag(3, BYTES);

/**
 * Key: partition_id (1) → namespace_id (4); path (2) → kind (1), id (2), name (3). As Key.fromProto reads them.
 * Plain loops, no callbacks: every key of a run is read here, some twice.
 */
export function readKey(reader: Reader, end: number): Key {
  let namespace = '';
  // Most keys have one element: an array of exactly one, rather than one grown by push.
  let first: PathElement | undefined;
  let more: PathElement[] | undefined;
  while (reader.pos < end) {
    const field = reader.uint32();
    if (field === PARTITION) {
      const partitionEnd = lengthDelimitedEnd(reader);
      while (nextField(reader, partitionEnd, NAMESPACE)) namespace = namespaces.read(reader);
    } else if (field === ELEMENT) {
      const elementEnd = lengthDelimitedEnd(reader);
      let kind = '';
      let id: string | undefined;
      let name: string | undefined;
      while (reader.pos < elementEnd) {
        const elementField = reader.uint32();
        if (elementField === KIND) kind = kinds.read(reader);
        else if (elementField === ID) id = readInt64(reader);
        else if (elementField === NAME) name = reader.string();
        else reader.skipType(elementField & 7);
      }
      const element = name ? pathElement(kind, undefined, name) : id !== undefined && id !== '0' ? pathElement(kind, id) : pathElement(kind);
      if (first === undefined) first = element;
      else (more ??= []).push(element);
    } else reader.skipType(field & 7);
  }
  return new Key(Object.freeze(first === undefined ? [] : more ? [first, ...more] : [first]), namespace);
}

const names = new Map<string, string>();

/**
 * Names (of kinds, or of namespaces) read from keys: one copy of each, however many keys carry it. The
 * last one's UTF-8 bytes are kept, as a run's keys mostly repeat one kind: that name is then neither
 * decoded nor looked up again, which for a kind was a string per key read.
 */
class Names {
  private last = '';
  private lastBytes: Uint8Array = new Uint8Array(0);

  /** A length-delimited string at the reader, read past. */
  read(reader: Reader): string {
    const start = reader.pos;
    const end = lengthDelimitedEnd(reader);
    const { buf, pos } = reader;
    if (end - pos === this.lastBytes.length && sameBytes(buf, pos, this.lastBytes)) {
      reader.pos = end;
      return this.last;
    }
    reader.pos = start;
    const name = reader.string();
    let known = names.get(name);
    if (known === undefined) {
      if (names.size >= 1024) names.clear();
      names.set(name, name);
      known = name;
    }
    this.last = known;
    // A copy: a view would keep the whole answer it came in alive.
    this.lastBytes = new Uint8Array(buf.subarray(pos, end));
    return known;
  }
}

const kinds = new Names();
const namespaces = new Names();

function sameBytes(buf: Uint8Array, at: number, bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (buf[at + i] !== bytes[i]) return false;
  return true;
}

/**
 * A varint int64 (a key id, an integer value, seconds, a version) as a decimal string, exact beyond 2^53.
 * Summed as a number first: each term is exact and the sums only grow, so a total within 2^53 is the
 * value itself. Versions (microseconds, about 2^51) are the common case past 32 bits; only larger values
 * and negative ones (ten bytes) are read again in BigInt.
 */
export function readInt64(reader: Reader): string {
  const { buf } = reader;
  const start = reader.pos;
  let pos = start;
  let value = 0;
  let scale = 1;
  let byte: number;
  do {
    if (pos >= reader.len) throw new RangeError('An int64 runs past the end of the response.');
    byte = buf[pos++];
    value += (byte & 0x7f) * scale;
    scale *= 128;
  } while (byte & 0x80);
  reader.pos = pos;
  if (value <= Number.MAX_SAFE_INTEGER) return String(value);
  let big = 0n;
  for (let at = pos - 1; at >= start; at--) big = (big << 7n) | BigInt(buf[at] & 0x7f);
  return BigInt.asIntN(64, big).toString();
}
