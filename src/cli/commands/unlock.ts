import type { CommandModule } from 'yargs';
import { Datastore } from '../../datastore';
import { breakLease } from '../../migrations';
import { resolveConfig } from '../config';
import { jsonLine } from '../output';
import type { GlobalFlags } from '../flags';

export const unlockCommand: CommandModule<GlobalFlags, GlobalFlags> = {
  command: 'unlock',
  describe: 'Break the migration lock (only when the run holding it is dead)',
  handler: async (argv) => {
    const config = await resolveConfig(argv);
    const store = await Datastore.connect(config.store);
    try {
      const { holder, run } = await breakLease(store, config.controlNamespace);
      if (argv.json) jsonLine({ unlocked: holder ?? null, run: run ?? null });
      else
        process.stdout.write(
          holder
            ? `Broke the lock held by ${holder.owner} (${holder.command}) since ${holder.acquiredAt.toISOString()}${run ? `; run ${run} is marked abandoned` : ''}. The next \`dsmigrate migrate\` resumes its work.\n`
            : 'The lock was not held.\n',
        );
    } finally {
      await store.close();
    }
  },
};
