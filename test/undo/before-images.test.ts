import { decodeProperties, Entity, Key, propertiesHash } from '../../src/datastore';
import { decodeImage, imageRanges, inRange, scannedRanges, storedBytes, writtenKeyOf, type KeyRange } from '../../src/sharding';
import { imageKey, imagesOf } from '../../src/sharding/before-images';

const OP = 'default:0001_x#0';

/** Keys of every shape, in no order: ids (with different lengths), names (non-ASCII too), ancestors, other kinds. */
function keys(): Key[] {
  const out: Key[] = [];
  for (const id of [1, 2, 9, 10, 11, 99, 100, 12345678901234]) out.push(Key.of('Rich', id));
  for (const name of ['a', 'ab', 'b', 'é', 'z', '\u{1F600}', 'Z', '0']) out.push(Key.of('Rich', name));
  out.push(Key.of('Owner', 'o1', 'Rich', 7), Key.of('Owner', 'o1'), Key.of('Owner', 'o1', 'Rich', 'n'), Key.of('Owner', 5, 'Rich', 1), Key.of('Ric', 1), Key.of('Richer', 1));
  return out.reverse();
}

const image = (k: Key) => imageKey(OP, k, k);

describe('before-image keys', () => {
  it("keep Datastore's key order, so a range of scanned keys is a range of images", () => {
    const sorted = [...keys()].sort(Key.compare);
    const images = sorted.map(image);
    expect([...images].sort(Key.compare)).toEqual(images);
  });

  it('name the key they restore', () => {
    for (const k of keys()) expect(writtenKeyOf(imageKey(OP, Key.of('Src', 1), k)).equals(k)).toBe(true);
  });

  it('translate ranges both ways: a key is in a range exactly when its images are in the image range', () => {
    const all = [...keys()].sort(Key.compare);
    const ranges: KeyRange[] = [{ namespace: '' }];
    for (let i = 0; i < all.length; i += 3) {
      for (let j = i; j < all.length; j += 4) {
        ranges.push({ namespace: '', start: all[i], end: all[j], endInclusive: true });
        ranges.push({ namespace: '', start: all[i], startExclusive: true, end: all[j] });
        ranges.push({ namespace: '', start: all[i] }, { namespace: '', end: all[j] });
      }
    }
    for (const range of ranges) {
      const [images] = imageRanges(OP, [range], ['']);
      const [back] = scannedRanges([images]);
      for (const k of all) {
        expect([k.toString(), inRange(images, imageKey(OP, k, Key.of('W', 1)))]).toEqual([k.toString(), inRange(range, k)]);
        expect([k.toString(), inRange(back, k)]).toEqual([k.toString(), inRange(range, k)]);
      }
    }
  });

  it('a range ending at an image (a closed job) stands for its scanned key, inclusive', () => {
    const k = Key.of('Rich', 10);
    const [back] = scannedRanges([{ namespace: '', end: imageKey(OP, k, k), endInclusive: true }]);
    expect(inRange(back, k)).toBe(true);
    expect(inRange(back, Key.of('Rich', 11))).toBe(false);
  });

  it("an operation's whole range holds none of another's", () => {
    const [mine] = imageRanges(OP, undefined, ['']);
    expect(inRange(mine, imageKey('default:0001_x#1', Key.of('Rich', 1), Key.of('Rich', 1)))).toBe(false);
    expect(inRange(mine, imageKey('default:0001_x#01', Key.of('Rich', 1), Key.of('Rich', 1)))).toBe(false);
    expect(inRange(mine, image(Key.of('Rich', 1)))).toBe(true);
  });
});

describe('a copy to another namespace', () => {
  it("keeps the image in the scanned entity's namespace, naming the written key in its own", () => {
    const scanned = Key.of('Rich', 1, { namespace: 'a' });
    const written = Key.of('Owner', 'o', 'Rich', 1, { namespace: 'tenant-b' });
    const key = imageKey(OP, scanned, written);
    expect(key.namespace).toBe('a');
    expect(writtenKeyOf(key).equals(written)).toBe(true);
    expect(writtenKeyOf(key).namespace).toBe('tenant-b');
  });
});

describe('an image as a batch encodes it', () => {
  it('reads back as the entity it keeps, with the hash of what was written, and is as large as counted', () => {
    const before = Entity.from(Key.of('Rich', 'é', { namespace: 'tenant' }), { keep: 'x', drop: 12, at: new Date(0) });
    const after = Entity.from(before.key, { keep: 'x', at: new Date(0) });
    const now = new Date(Date.UTC(2026, 11, 6));
    const undo = { retain: '7d', retainMs: 7 * 86_400_000 };
    const [changed, created] = imagesOf({
      operation: 'default:0001_é#0',
      undo,
      store: { projectId: 'p', databaseId: '' },
      writes: [
        { scanned: before.key, written: before.key, before, after },
        { scanned: before.key, written: Key.of('Copy', 1), after },
      ],
      now,
    });
    const read = (e: { image: { key: Key; bytes: Uint8Array } }) => new Entity(e.image.key, decodeProperties(e.image.bytes));
    const image = decodeImage(read(changed));
    expect(image.target.equals(before.key)).toBe(true);
    expect(image.before!.toObject()).toEqual(before.toObject());
    expect(image.after).toBe(propertiesHash(after));
    expect(image.expiresAt).toEqual(new Date(now.getTime() + undo.retainMs));
    expect(read(changed).isIndexed('before')).toBe(false);
    expect(read(changed).isIndexed('expiresAt')).toBe(true);
    expect(changed.bytes).toBe(storedBytes(read(changed)));
    expect(decodeImage(read(created)).before).toBeUndefined();
    expect(created.bytes).toBe(storedBytes(read(created)));
  });
});
