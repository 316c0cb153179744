import { Writer } from 'protobufjs/minimal';
import { ProtoWriter } from '../../src/datastore/proto-writer';

/** One writer call, made on both writers. */
type Step = (writer: Writer | ProtoWriter) => void;

/** A deterministic pseudo-random sequence, so that a failure can be run again. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
}

const STRINGS = [
  '',
  'a',
  'Person',
  'ünïcødé ✓ 😀',
  'person-é',
  'tag 😀 end',
  'x'.repeat(41) + 'é',
  'x'.repeat(42),
  'é'.repeat(42),
  'y'.repeat(43),
  'z'.repeat(200),
  '日本語'.repeat(50),
  'w'.repeat(20_000),
];
const NUMBERS = [0, 1, 127, 128, 300, 16_383, 16_384, 2 ** 31 - 1, 2 ** 32 - 1];
const INT64S: (number | string)[] = [0, 1, 5629499534213120, Number.MAX_SAFE_INTEGER, '9007199254740993', '9223372036854775807', '-1', '-9223372036854775808', -5, '123456789012345'];

/** Picks one of `items` by the sequence. */
type Pick = <T>(items: readonly T[]) => T;

function pickFrom(next: () => number): Pick {
  return (items) => items[Math.floor(next() * items.length)];
}

/** A field of one scalar type: its wire type, the values it may take, and how a writer writes one after the tag. */
function scalar<T>(wire: number, values: readonly T[], write: (writer: Writer | ProtoWriter, value: T) => unknown): (field: number, pick: Pick) => Step {
  return (field, pick) => {
    const value = pick(values);
    return (w) => write(w.uint32((field << 3) | wire), value);
  };
}

/** Every scalar field type the encoders write. */
const SCALARS = [
  scalar(0, NUMBERS, (w, n) => w.uint32(n)),
  scalar(0, [...NUMBERS, -1, -(2 ** 31)], (w, n) => w.int32(n)),
  scalar(0, INT64S, (w, n) => w.int64(n)),
  scalar(0, [false, true], (w, b) => w.bool(b)),
  scalar(1, [0, -0, 1.5, -2.25e300, Number.MIN_VALUE, NaN, Infinity], (w, d) => w.double(d)),
  scalar(2, STRINGS, (w, text) => w.string(text)),
  scalar(2, [new Uint8Array(0), Buffer.from([0, 255, 7]), Buffer.alloc(300, 9), 'AAEC/w=='], (w, b) => w.bytes(b)),
];

/** A random sequence of fields, nested messages among them, as the encoders write them. */
function steps(next: () => number, depth = 0): Step[] {
  const out: Step[] = [];
  const pick = pickFrom(next);
  const count = 1 + Math.floor(next() * 8);
  for (let i = 0; i < count; i++) {
    const field = 1 + Math.floor(next() * 20);
    const choice = Math.floor(next() * (SCALARS.length + (depth < 4 ? 1 : 0)));
    if (choice < SCALARS.length) {
      out.push(SCALARS[choice](field, pick));
      continue;
    }
    const inner = steps(next, depth + 1);
    const repeat = next() < 0.2 ? 200 : 1;
    out.push((w) => {
      w.uint32((field << 3) | 2).fork();
      for (let r = 0; r < repeat; r++) for (const step of inner) step(w);
      w.ldelim();
    });
  }
  return out;
}

describe('ProtoWriter', () => {
  it('writes the bytes protobufjs writes, for every field type, long strings and nested messages past each length size', () => {
    for (let seed = 1; seed <= 150; seed++) {
      const sequence = steps(random(seed));
      const ours = new ProtoWriter(16);
      const theirs = Writer.create();
      for (const step of sequence) {
        step(ours);
        step(theirs);
      }
      // Compared whole, then reported by seed and first difference: the messages run to tens of kilobytes.
      const [a, b] = [Buffer.from(ours.finish()), Buffer.from(theirs.finish())];
      const differs = a.findIndex((byte, i) => byte !== b[i]);
      expect({ seed, length: a.length, differs }).toEqual({ seed, length: b.length, differs: -1 });
    }
  });

  it('moves a nested message up by as many bytes as its length takes', () => {
    for (const length of [127, 128, 16_383, 16_384, 2_097_152]) {
      // The same calls on both writers: a nested message of `length` bytes, then a field after it.
      const message = (w: Writer | ProtoWriter) =>
        Buffer.from(
          w
            .uint32(10)
            .fork()
            .bytes(Buffer.alloc(length - 4, 1))
            .ldelim()
            .uint32(16)
            .uint32(1)
            .finish(),
        );
      expect(Buffer.compare(message(new ProtoWriter(8)), message(Writer.create()))).toBe(0);
    }
  });

  it('refuses an ldelim without a fork, and a finish with a message left open', () => {
    expect(() => new ProtoWriter().ldelim()).toThrow('ldelim without a fork');
    expect(() => new ProtoWriter().fork().finish()).toThrow('left open');
  });
});
