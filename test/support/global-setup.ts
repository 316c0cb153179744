import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { EMULATOR_FLAVOURS, startDatastoreEmulator, type EmulatorFlavour, type RunningEmulator } from '../../emulator/datastore-emulator';

declare global {
  // Shared between jest's global setup and teardown, which run in one process.
  var __DSM_EMULATORS__: RunningEmulator[] | undefined;
  var __DSM_TEST_TMP__: string | undefined;
}

/** Starts one emulator per flavour for the whole run; DSM_TEST_FLAVOURS=firestore (or classic) narrows it. */
export default async function globalSetup(): Promise<void> {
  const wanted = (process.env.DSM_TEST_FLAVOURS ?? EMULATOR_FLAVOURS.join(','))
    .split(',')
    .map((f) => f.trim())
    .filter(Boolean) as EmulatorFlavour[];
  const emulators = await Promise.all(wanted.map((flavour) => startDatastoreEmulator({ flavour })));
  globalThis.__DSM_EMULATORS__ = emulators;
  // Every temporary directory of the run (apps, packs, pause files, the CLI processes' own) is made in
  // one, which the teardown removes: os.tmpdir() reads TMPDIR, and the workers, forked after global
  // setup, inherit it, as do the processes they start.
  const root = mkdtempSync(path.join(tmpdir(), 'dsm-test-'));
  globalThis.__DSM_TEST_TMP__ = root;
  process.env.TMPDIR = root;
  // Test files that install the packed package share one pack (test/support/packed-app.ts).
  process.env.DSM_TEST_PACKED_DIR = mkdtempSync(path.join(root, 'dsm-packed-'));
  process.env.DSM_TEST_EMULATORS = JSON.stringify(Object.fromEntries(emulators.map((e) => [e.flavour, e.host])));
}
