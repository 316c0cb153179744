import { v1 } from '@google-cloud/datastore';
import { grpc } from 'google-gax';

/** The official low-level client on an emulator: reads that bypass our codec, so tests see exactly what Datastore stored. */
export function rawClient(emulatorHost: string, projectId: string): InstanceType<typeof v1.DatastoreClient> {
  const [host, port] = emulatorHost.split(':');
  return new v1.DatastoreClient({ servicePath: host, port: Number(port), sslCreds: grpc.credentials.createInsecure(), projectId, clientOptions: { universeDomain: 'googleapis.com' } });
}
