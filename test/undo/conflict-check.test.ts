import { jobRef } from '../../src/control';
import { Key, type Datastore } from '../../src/datastore';
import { DataOperation, RestoreBeforeImages } from '../../src/operations';
import { IMAGE_KIND, decodeImage, restoredImage } from '../../src/sharding';
import { runCli, tempApp } from '../support/cli';
import { describeEachFlavour, uniqueProject } from '../support/emulators';
import { graphOf } from '../worker/support/harness';
import { images, migrationFile, rawSeed, richKeys } from './support';

const N = 16;

/**
 * The overwrite guard's check before a back-out runs beside batches of the same job when a step start is
 * redelivered or a run resumes: an entity a batch restores between the check's query and its lookup is not a
 * conflict (a CI run under load failed a back-out through Cloud Tasks on exactly that).
 */
describeEachFlavour('the overwrite guard beside a running back-out', (ctx) => {
  it('counts no entity a batch of the same job restored while it looked', async () => {
    const projectId = uniqueProject('undocc');
    const store = await ctx.connect({ projectId });
    await rawSeed(ctx, projectId, richKeys('Rich', N));
    const app = tempApp({ 'migrations/0001_change.ts': migrationFile('RemoveFieldData', "new RemoveFieldData('Rich', 'keep', { undo: true })") });
    const env = { ...ctx.env(), DATASTORE_PROJECT_ID: projectId, GOOGLE_CLOUD_PROJECT: projectId };
    expect((await runCli(['migrate'], { cwd: app, env })).code).toBe(0);

    const migration = (await graphOf(app)).byId.get('default:0001_change')!;
    const source = migration.definition.operations[0] as DataOperation;
    const job = jobRef('', migration.id, 0, 1);

    // The first lookup of the entities comes after a concurrent batch restored every one of them, images marked with them.
    let restored = 0;
    const racing = new Proxy(store, {
      get(target, name, receiver) {
        if (name !== 'lookup') return Reflect.get(target, name, receiver) as unknown;
        return async (...args: Parameters<Datastore['lookup']>) => {
          if (restored === 0 && args[0].some((key) => key.kind === 'Rich')) {
            const kept = [];
            for await (const image of target.query({ kind: IMAGE_KIND })) if (!image.key.name?.endsWith('|~')) kept.push(image);
            await target.save(kept.flatMap((image) => [decodeImage(image).before!, restoredImage(image, new Date())]));
            restored = kept.length;
          }
          return target.lookup(...args);
        };
      },
    });
    await expect(new RestoreBeforeImages(source, 0, 'refuse').beforeJob(racing, job)).resolves.toBeUndefined();
    expect(restored).toBe(N);

    // One of them unmarked (as if its batch had not run) no longer has what the operation left: still refused.
    const unmarked = (await images(store)).find((image) => image.target.equals(Key.of('Rich', 3)))!;
    const [stored] = await store.lookup([unmarked.key]);
    await store.save([stored!.copy().set('restoredAt', null, { indexed: false })]);
    await expect(new RestoreBeforeImages(source, 0, 'refuse').beforeJob(store, job)).rejects.toThrow(/1 entity was changed since it ran \(e\.g\. Rich:3\)/);
  });
});
