import { CloudTasksClient } from '@google-cloud/tasks';
import { grpc } from 'google-gax';

/** Where an emulator listens: a running handle, or "host:port" as in CLOUD_TASKS_EMULATOR_HOST. */
export type EmulatorAddress = string | { hostname: string; port: number };

function split(address: EmulatorAddress): { hostname: string; port: number } {
  if (typeof address !== 'string') return address;
  const colon = address.lastIndexOf(':');
  const port = Number(address.slice(colon + 1));
  if (colon <= 0 || !Number.isInteger(port) || port <= 0) {
    throw new Error(`Expected "host:port" for the Cloud Tasks emulator, got "${address}"`);
  }
  return { hostname: address.slice(0, colon).replace(/^\[(.*)\]$/, '$1'), port };
}

/**
 * An unchanged CloudTasksClient pointed at the emulator. The insecure credentials must come from
 * google-gax's own grpc export: credentials from another copy of @grpc/grpc-js are rejected by
 * the client's channel. Setting the universe domain spares the client a metadata-server lookup.
 */
export function tasksClientFor(address: EmulatorAddress): CloudTasksClient {
  const { hostname, port } = split(address);
  return new CloudTasksClient({
    servicePath: hostname,
    port,
    sslCreds: grpc.credentials.createInsecure(),
    clientOptions: { universeDomain: 'googleapis.com' },
  });
}
