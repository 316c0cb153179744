import { Key, type Datastore } from '../../src/datastore';
import { DEFINITION_KIND, ModelFactory, type DefinitionInput } from '../../src/dynamic';
import { DEFINITION_VERSION_KIND } from '../../src/dynamic/store';
import { isDsMigrateError } from '../../src/errors';
import { describeEachFlavour } from '../support/emulators';

const NAME = 'Race';
const ROUNDS = 30;

/** A distinct hash per round, so that no writer can mistake another's version for its own lost reply. */
const shape = (round: number): DefinitionInput => ({
  name: NAME,
  kind: 'RaceEntity',
  fields: [
    { name: 'title', type: 'string', default: 'x' },
    { name: `r${round}`, type: 'string', nullable: true, indexed: false },
  ],
});

/** What a caller was told it wrote. A delete returns nothing, so its version is known only by elimination. */
type Claim = { op: 'define' | 'update'; version: number; hash: string } | { op: 'delete' };

interface Stored {
  version: number;
  hash: string;
  deleted: boolean;
  fields: string;
}

function stored(entity: { get(name: string): unknown } | undefined): Stored | undefined {
  if (!entity) return undefined;
  return { version: Number(entity.get('version')), hash: String(entity.get('hash')), deleted: entity.get('deleted') === true, fields: String(entity.get('fields')) };
}

/** The only ways a racing writer may lose: it started from a version someone else moved past, or from a deleted definition. */
function expectLost(result: PromiseSettledResult<unknown>): void {
  if (result.status === 'fulfilled') return;
  if (!isDsMigrateError(result.reason) || !['CONFLICT', 'UNKNOWN_KIND'].includes(result.reason.code)) throw result.reason;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describeEachFlavour('ModelFactory: delete and re-define racing update', (ctx) => {
  it('never lets a stale write overwrite a newer version, and never reuses a version number', async () => {
    const namespace = 'dyn-race';
    const reader: Datastore = await ctx.connect();
    // Two connections: the race is between processes, not between calls sharing one client's state.
    const a = new ModelFactory(await ctx.connect(), { namespace, stalenessMs: 0, register: false, updatedBy: 'a' });
    const b = new ModelFactory(await ctx.connect(), { namespace, stalenessMs: 0, register: false, updatedBy: 'b' });
    const headKey = Key.of(DEFINITION_KIND, NAME, { namespace });
    const versionAt = async (version: number) => stored(await reader.get(headKey.child(DEFINITION_VERSION_KIND, version)));

    const first = await a.define(shape(0));
    const claims: Claim[] = [{ op: 'define', version: first.definition.version, hash: first.definition.hash }];
    // How long a delete takes from its read to its commit grows with the history it lists; the update's delay follows it.
    let deleteMs = 40;

    for (let round = 1; round <= ROUNDS; round++) {
      const before = stored(await reader.get(headKey))!.version;
      const [deleteThenDefine, update] = await Promise.allSettled([
        (async () => {
          const started = performance.now();
          try {
            await a.delete(NAME);
          } finally {
            deleteMs = performance.now() - started;
          }
          claims.push({ op: 'delete' });
          const { definition } = await a.define(shape(round));
          claims.push({ op: 'define', version: definition.version, hash: definition.hash });
        })(),
        (async () => {
          // Staggered across the delete's span, so that over the rounds the update reads and commits before,
          // inside and after the window between the delete's read and its commit (and the define that follows).
          await pause(deleteMs * [0, 0.3, 0.6, 0.8, 0.9, 1, 1.2][round % 7]);
          const { definition } = await b.update(NAME, (d) => ({ fields: [...d.fields, { name: `b${round}`, type: 'string', nullable: true, indexed: false }] }));
          claims.push({ op: 'update', version: definition.version, hash: definition.hash });
        })(),
      ]);
      expectLost(deleteThenDefine);
      expectLost(update);

      // A round that ended deleted is defined again, so that the next one races on a live definition.
      if (stored(await reader.get(headKey))!.deleted) {
        const { definition } = await a.define(shape(round + 1000));
        claims.push({ op: 'define', version: definition.version, hash: definition.hash });
      }

      const head = stored(await reader.get(headKey))!;
      expect(head.version).toBeGreaterThan(before);
      // Every write the callers were told succeeded holds a version of its own: a stale write that replaced
      // a newer one would leave more successes than versions.
      expect([round, head.version]).toEqual([round, claims.length]);
      const versioned = claims.filter((c) => c.op !== 'delete');
      expect(new Set(versioned.map((c) => c.version)).size).toBe(versioned.length);
      // The head is the newest version, exactly.
      expect(await versionAt(head.version)).toEqual(head);
      expect(await versionAt(head.version + 1)).toBeUndefined();
    }

    // The whole history: every version present, each what its writer was told it wrote, tombstones only where deletes succeeded.
    const history: Stored[] = [];
    for (let version = 1; version <= claims.length; version++) history.push((await versionAt(version))!);
    expect(history.map((v) => v.version)).toEqual(claims.map((_, i) => i + 1));
    for (const claim of claims) if (claim.op !== 'delete') expect(history[claim.version - 1]).toMatchObject({ version: claim.version, hash: claim.hash, deleted: false });
    expect(history.filter((v) => v.deleted)).toHaveLength(claims.filter((c) => c.op === 'delete').length);
    const defined = new Set(claims.flatMap((c) => (c.op === 'define' ? [c.version] : [])));
    for (const [i, version] of history.entries()) {
      if (!version.deleted) continue;
      // A tombstone keeps the definition it deleted; what follows it can only be a define, at the next version.
      expect(history[i - 1]).toMatchObject({ hash: version.hash, fields: version.fields, deleted: false });
      if (i + 1 < history.length) expect([i + 2, defined.has(i + 2)]).toEqual([i + 2, true]);
    }
    // The race was run, not just one side of it: the delete won some rounds and the update others.
    expect(claims.filter((c) => c.op === 'delete').length).toBeGreaterThan(0);
    expect(claims.filter((c) => c.op === 'update').length).toBeGreaterThan(0);
  });
});
