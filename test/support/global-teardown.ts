import { rmSync } from 'node:fs';

export default async function globalTeardown(): Promise<void> {
  await Promise.all((globalThis.__DSM_EMULATORS__ ?? []).map((e) => e.stop()));
  if (globalThis.__DSM_TEST_TMP__) rmSync(globalThis.__DSM_TEST_TMP__, { recursive: true, force: true });
}
