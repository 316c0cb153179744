import { startDatastoreProxy, type DatastoreProxy, type DatastoreProxyOptions } from '../../emulator/datastore-proxy';

/**
 * Starts the Datastore proxy (emulator/datastore-proxy) in this process, in front of an emulator of
 * `emulatorHosts()`; its `host` goes where the emulator's would (`Datastore.connect({emulatorHost})`,
 * DATASTORE_EMULATOR_HOST), and `counts()` / `hotDocuments()` say what it injected and saw. Stops after
 * the enclosing block.
 */
export function useDatastoreProxy(target: () => string, options: Omit<DatastoreProxyOptions, 'target'> = {}): () => DatastoreProxy {
  let proxy: DatastoreProxy | undefined;
  beforeAll(async () => {
    proxy = await startDatastoreProxy({ ...options, target: target() });
  });
  afterAll(async () => {
    await proxy?.stop();
  });
  return () => {
    if (!proxy) throw new Error('the Datastore proxy is not started yet: use it inside a test');
    return proxy;
  };
}

/** Starts a proxy for one test; stop it yourself (try/finally). */
export function startProxy(target: string, options: Omit<DatastoreProxyOptions, 'target'> = {}): Promise<DatastoreProxy> {
  return startDatastoreProxy({ ...options, target });
}
