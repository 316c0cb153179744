/**
 * A child process that saves Accounts, so that concurrent saves of one unique value come from separate processes
 * too. Argv: namespace, then JSON `[{id, email}, ...]`. It connects (from the environment), prints `ready`, waits
 * for a line on stdin, runs every save at once and prints one JSON line of outcomes.
 */
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { Datastore } from '../../../src/datastore';
import { isDsMigrateError } from '../../../src/errors';
import { Account } from './account-model';

export interface SaveOutcome {
  id: string;
  email: string;
  code: string;
}

async function main(): Promise<void> {
  const namespace = process.argv[2];
  const saves = JSON.parse(process.argv[3]) as { id: string; email: string }[];
  const store = await Datastore.connect();
  const lines = createInterface({ input: process.stdin });
  process.stdout.write('ready\n');
  await once(lines, 'line');
  const outcomes = await Promise.all(saves.map(({ id, email }) => saveOne(store, namespace, id, email)));
  process.stdout.write(`${JSON.stringify(outcomes)}\n`);
  lines.close();
  await store.close();
}

/** 'ok', or the error's code: what the parent counts. */
export async function saveOne(store: Datastore, namespace: string, id: string, email: string): Promise<SaveOutcome> {
  try {
    await Account.save(store, Account.create(Account.key(id, { namespace }), { email }));
    return { id, email, code: 'ok' };
  } catch (error) {
    if (isDsMigrateError(error)) return { id, email, code: error.code };
    throw error;
  }
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  });
}
