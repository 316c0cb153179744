export default async function globalTeardown(): Promise<void> {
  await Promise.all((globalThis.__DSM_EMULATORS__ ?? []).map((e) => e.stop()));
}
