import type { CloudTasksClient } from '@google-cloud/tasks';
import { startCloudTasksEmulator, tasksClientFor, type CloudTasksEmulator, type CloudTasksEmulatorOptions } from '../../../emulator/cloud-tasks';
import { TargetServer } from './target-server';

export interface Harness {
  emulator: CloudTasksEmulator;
  client: CloudTasksClient;
  target: TargetServer;
  close(): Promise<void>;
}

/** An emulator, the unchanged client pointed at it, and a target server; close() stops all three. */
export async function startHarness(options: CloudTasksEmulatorOptions = {}): Promise<Harness> {
  const [emulator, target] = await Promise.all([startCloudTasksEmulator(options), TargetServer.start()]);
  const client = tasksClientFor(emulator);
  return {
    emulator,
    client,
    target,
    close: async () => {
      await client.close();
      await emulator.stop();
      await target.close();
    },
  };
}

let counter = 0;
/** A fresh location per test, so tests sharing an emulator do not see each other's queues. */
export const uniqueParent = (): string => `projects/test-project/locations/loc-${process.pid}-${++counter}`;

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The gRPC status code of a failed call, for `expect(await codeOf(...)).toBe(status.X)`. */
export async function codeOf(call: Promise<unknown>): Promise<number | undefined> {
  try {
    await call;
  } catch (error) {
    return (error as { code?: number }).code;
  }
  return undefined;
}

/** The rejection itself, to check code and message together. */
export async function errorOf(call: Promise<unknown>): Promise<{ code?: number; details?: string; message: string }> {
  try {
    await call;
  } catch (error) {
    return error as { code?: number; details?: string; message: string };
  }
  throw new Error('expected the call to fail');
}

/** Milliseconds of a google.protobuf.Timestamp or Duration as the client returns them. */
export function millis(value: { seconds?: number | string | { toString(): string } | null; nanos?: number | null } | null | undefined): number {
  if (!value) return 0;
  return Number(String(value.seconds ?? 0)) * 1000 + Math.trunc((value.nanos ?? 0) / 1e6);
}

/** A Duration or Timestamp of `s` seconds, exact to the millisecond. */
export function seconds(s: number): { seconds: number; nanos: number } {
  const ms = Math.round(s * 1000);
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
}
