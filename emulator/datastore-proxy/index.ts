/** A gRPC proxy in front of a Datastore emulator that adds production's latency, faults and hot-entity contention. */
export { startDatastoreProxy, type DatastoreProxy, type DatastoreProxyReport } from './server';
export {
  DATASTORE_METHODS,
  FAULT_CODES,
  FAULTED_METHODS,
  DatastoreProxyOptionError,
  parseFaultMethods,
  parseFaultShares,
  parseLatency,
  type DatastoreMethod,
  type DatastoreProxyOptions,
  type FaultCode,
} from './options';
export type { ProxyCounts, InjectedCode } from './counts';
export type { HotDocument } from './hot-documents';
export type { WrittenKey } from './commit-keys';
