import type { google } from '@google-cloud/datastore/build/protos/protos';
import { Key, type Datastore } from '../../src/datastore';
import { IMAGE_KIND, decodeImage, type BeforeImage } from '../../src/sharding';
import type { FlavourContext } from '../support/emulators';
import { rawClient } from '../support/raw-client';

import { normaliseProperties } from '../support/raw-entities';

export { SEED, normalise, rawSeed } from '../support/raw-entities';

/** Keys of every shape: ids, a non-ASCII name, a child of another root. */
export function richKeys(kind: string, n: number): Key[] {
  return [...Array.from({ length: n - 2 }, (_, i) => Key.of(kind, i + 1)), Key.of(kind, 'näme-é'), Key.of('Owner', 'o1', kind, 7)];
}

/** Every entity of the kinds as the emulator stores them, read by the official client: key → properties. */
export async function rawSnapshot(ctx: FlavourContext, projectId: string, kinds: readonly string[], namespace = ''): Promise<Record<string, Record<string, unknown>>> {
  const client = rawClient(ctx.host, projectId);
  const out: Record<string, Record<string, unknown>> = {};
  try {
    for (const kind of kinds) {
      let cursor: Uint8Array | string | undefined;
      for (;;) {
        const [response]: [google.datastore.v1.IRunQueryResponse] = await client.runQuery({
          projectId,
          partitionId: { projectId, namespaceId: namespace },
          query: { kind: [{ name: kind }], ...(cursor ? { startCursor: cursor } : {}) },
        });
        const results = response.batch?.entityResults ?? [];
        for (const { entity } of results) out[`${kind}:${JSON.stringify(entity!.key!.path!.map((e) => [e.kind, e.name || String(e.id)]))}`] = normaliseProperties(entity!.properties ?? {});
        if (results.length === 0 || response.batch?.moreResults === 'NO_MORE_RESULTS') break;
        cursor = response.batch!.endCursor ?? undefined;
      }
    }
  } finally {
    await client.close();
  }
  return out;
}

export async function images(store: Datastore, namespace = ''): Promise<BeforeImage[]> {
  const out: BeforeImage[] = [];
  // Leaving out the marks `undo prune` leaves (src/sharding/undo-data.ts prunedMarkKey).
  for await (const entity of store.query({ kind: IMAGE_KIND, namespace })) if (!entity.key.name?.endsWith('|~')) out.push(decodeImage(entity));
  return out;
}

export const migrationFile = (imports: string, operations: string): string => `
import { defineMigration, ${imports} } from 'datastore-migrate';
export default defineMigration({ operations: [${operations}] });
`;
