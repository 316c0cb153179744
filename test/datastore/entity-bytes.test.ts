import { decodeProperties, encodeProperties, Entity, Key, propertiesHash } from '../../src/datastore';

describe("an entity's properties as bytes", () => {
  const read = () => {
    const written = Entity.from(Key.of('A', 1), { b: 'two', a: 1 });
    // As a lookup would hand them over: the bytes Datastore sent, here in an order the canonical encoding would not choose.
    const sent = Buffer.concat([encodeProperties(Entity.from(Key.of('A', 1), { b: 'two' }), 'p'), encodeProperties(Entity.from(Key.of('A', 1), { a: 1 }), 'p')]);
    return { entity: Entity.read(written.key, written.toProto('p').properties!, undefined, sent), sent };
  };

  it('are the bytes a lookup read, while the entity is unchanged', () => {
    const { entity, sent } = read();
    expect(encodeProperties(entity, 'p')).toEqual(sent);
    expect(encodeProperties(entity.snapshot(), 'p')).toEqual(sent);
  });

  it('are encoded again once it changed, and decode to what it holds', () => {
    const { entity, sent } = read();
    entity.set('c', true);
    const bytes = encodeProperties(entity, 'p');
    expect(bytes).not.toEqual(sent);
    expect(Object.keys(decodeProperties(bytes)).sort()).toEqual(['a', 'b', 'c']);
    // Saved (the store marks it clean): what it holds, not what was read.
    entity.markClean();
    expect(encodeProperties(entity, 'p')).toEqual(bytes);
  });

  it('hash alike however they were read, and apart when a value differs only in what JSON would blur', () => {
    const { entity } = read();
    expect(propertiesHash(entity)).toBe(propertiesHash(Entity.from(Key.of('A', 1), { a: 1, b: 'two' })));
    const hashes = [NaN, Infinity, -Infinity, 0, -0].map((d) => propertiesHash(new Entity(Key.of('A', 1), { d: { doubleValue: d } })));
    expect(new Set(hashes).size).toBe(hashes.length);
    expect(propertiesHash(Entity.from(Key.of('A', 1), { x: Buffer.from('ab') }))).not.toBe(propertiesHash(Entity.from(Key.of('A', 1), { x: 'YWI=' })));
  });
});
