/** What the `dsmigrate emulator` command (src/cli) takes from the emulators: the only way in from src/. */
import type { DatastoreProxy } from './datastore-proxy';
import type { DatastoreProxyOptions } from './datastore-proxy/options';
import type { LocalEmulators, LocalEmulatorsOptions } from './local';

export type { LocalEmulators, LocalEmulatorsOptions } from './local';
export { EMULATOR_FLAVOURS, EmulatorPortInUseError, EmulatorSetupError, type EmulatorFlavour } from './datastore-emulator';
export type { CloudTasksEmulatorOptions } from './cloud-tasks';
// The options alone (no gRPC) at load; the proxy itself comes with startDatastoreProxy or startLocalEmulators.
export { DatastoreProxyOptionError, FAULT_CODES, parseFaultMethods, parseFaultShares, parseLatency, type DatastoreMethod, type DatastoreProxyOptions, type FaultCode } from './datastore-proxy/options';
export type { DatastoreProxy, DatastoreProxyReport, HotDocument, ProxyCounts } from './datastore-proxy';

/** Loads the emulators (the Cloud Tasks one brings gRPC and its protos) only when asked to start them, not at every start of the CLI. */
export async function startLocalEmulators(options: LocalEmulatorsOptions): Promise<LocalEmulators> {
  const local = await import('./local');
  return local.startLocalEmulators(options);
}

/** A Datastore fault and latency proxy in front of a running emulator (emulator/datastore-proxy), loaded when asked for. */
export async function startDatastoreProxy(options: DatastoreProxyOptions): Promise<DatastoreProxy> {
  const proxy = await import('./datastore-proxy');
  return proxy.startDatastoreProxy(options);
}
