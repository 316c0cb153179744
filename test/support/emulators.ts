import { randomBytes } from 'node:crypto';
import type { EmulatorFlavour } from '../../emulator/datastore-emulator';
import { Datastore, type StoreOptions } from '../../src/datastore';

export interface FlavourContext {
  flavour: EmulatorFlavour;
  /** `host:port` for DATASTORE_EMULATOR_HOST. */
  host: string;
  /** A project id of this describe block's own: isolates test files from each other on one emulator. */
  projectId: string;
  /** A connected store on this flavour and project, closed after the block. */
  connect(options?: StoreOptions): Promise<Datastore>;
  /** Environment for child processes (the CLI) pointing at this emulator and project. */
  env(): NodeJS.ProcessEnv;
}

export function emulatorHosts(): Partial<Record<EmulatorFlavour, string>> {
  const raw = process.env.DSM_TEST_EMULATORS;
  if (!raw) throw new Error('DSM_TEST_EMULATORS is not set: run the tests through jest (its global setup starts the emulators).');
  return JSON.parse(raw) as Partial<Record<EmulatorFlavour, string>>;
}

export function uniqueProject(prefix = 't'): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

/** Runs the block once per running emulator flavour, each with its own project and connections. */
export function describeEachFlavour(name: string, body: (ctx: FlavourContext) => void): void {
  for (const [flavour, host] of Object.entries(emulatorHosts()) as [EmulatorFlavour, string][]) {
    describe(`${name} [${flavour}]`, () => {
      const projectId = uniqueProject(flavour === 'firestore' ? 'f' : 'c');
      const opened: Datastore[] = [];
      afterAll(async () => {
        await Promise.all(opened.map((s) => s.close()));
      });
      body({
        flavour,
        host,
        projectId,
        async connect(options = {}) {
          const store = await Datastore.connect({ emulatorHost: host, projectId, ...options });
          opened.push(store);
          return store;
        },
        env() {
          return { ...process.env, DATASTORE_EMULATOR_HOST: host, DATASTORE_PROJECT_ID: projectId, GOOGLE_CLOUD_PROJECT: projectId };
        },
      });
    });
  }
}
