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

const STRINGS = ['', 'a', 'Person', 'ünïcødé ✓ 😀', 'x'.repeat(42), 'é'.repeat(42), 'y'.repeat(43), 'z'.repeat(200), '日本語'.repeat(50), 'w'.repeat(20_000)];
const NUMBERS = [0, 1, 127, 128, 300, 16_383, 16_384, 2 ** 31 - 1, 2 ** 32 - 1];
const INT64S: (number | string)[] = [0, 1, 5629499534213120, Number.MAX_SAFE_INTEGER, '9007199254740993', '9223372036854775807', '-1', '-9223372036854775808', -5, '123456789012345'];

function pickFrom(next: () => number) {
  return function pick<T>(items: readonly T[]): T {
    return items[Math.floor(next() * items.length)];
  };
}

/** A random sequence of fields, nested messages among them, as the encoders write them. */
function steps(next: () => number, depth = 0): Step[] {
  const out: Step[] = [];
  const count = 1 + Math.floor(next() * 8);
  for (let i = 0; i < count; i++) {
    const pick = pickFrom(next);
    const field = 1 + Math.floor(next() * 20);
    switch (Math.floor(next() * (depth < 4 ? 8 : 7))) {
      case 0: {
        const n = pick(NUMBERS);
        out.push((w) => w.uint32((field << 3) | 0).uint32(n));
        break;
      }
      case 1: {
        const n = pick([...NUMBERS, -1, -(2 ** 31)]);
        out.push((w) => w.uint32((field << 3) | 0).int32(n));
        break;
      }
      case 2: {
        const n = pick(INT64S);
        out.push((w) => w.uint32((field << 3) | 0).int64(n));
        break;
      }
      case 3: {
        const b = next() < 0.5;
        out.push((w) => w.uint32((field << 3) | 0).bool(b));
        break;
      }
      case 4: {
        const d = pick([0, -0, 1.5, -2.25e300, Number.MIN_VALUE, NaN, Infinity]);
        out.push((w) => w.uint32((field << 3) | 1).double(d));
        break;
      }
      case 5: {
        const s = pick(STRINGS);
        out.push((w) => w.uint32((field << 3) | 2).string(s));
        break;
      }
      case 6: {
        const b = pick([new Uint8Array(0), Buffer.from([0, 255, 7]), Buffer.alloc(300, 9), 'AAEC/w==']);
        out.push((w) => w.uint32((field << 3) | 2).bytes(b));
        break;
      }
      default: {
        const inner = steps(next, depth + 1);
        const repeat = next() < 0.2 ? 200 : 1;
        out.push((w) => {
          w.uint32((field << 3) | 2).fork();
          for (let r = 0; r < repeat; r++) for (const step of inner) step(w);
          w.ldelim();
        });
      }
    }
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
      const bytes = new ProtoWriter(8)
        .uint32(10)
        .fork()
        .bytes(Buffer.alloc(length - 4, 1))
        .ldelim()
        .uint32(16)
        .uint32(1)
        .finish();
      const expected = Writer.create()
        .uint32(10)
        .fork()
        .bytes(Buffer.alloc(length - 4, 1))
        .ldelim()
        .uint32(16)
        .uint32(1)
        .finish();
      expect(Buffer.compare(bytes, Buffer.from(expected))).toBe(0);
    }
  });

  it('refuses an ldelim without a fork, and a finish with a message left open', () => {
    expect(() => new ProtoWriter().ldelim()).toThrow('ldelim without a fork');
    expect(() => new ProtoWriter().fork().finish()).toThrow('left open');
  });
});
