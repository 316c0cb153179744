import type { WireDuration, WireTimestamp } from './wire';
import { invalidArgument } from './errors';

/**
 * Durations and timestamps are kept as milliseconds inside the emulator. Nanos are rounded to the
 * nearest millisecond: nothing here is scheduled more finely.
 */
export function durationToMs(value: WireDuration | undefined, field: string): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value.seconds ?? 0);
  const nanos = value.nanos ?? 0;
  if (!Number.isFinite(seconds)) throw invalidArgument(`${field} is not a valid duration`);
  return seconds * 1000 + Math.round(nanos / 1e6);
}

export const timestampToMs = (value: WireTimestamp | undefined, field: string): number | undefined => durationToMs(value, field);

export function msToDuration(ms: number): { seconds: number; nanos: number } {
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: Math.round(ms - seconds * 1000) * 1e6 };
}

export const msToTimestamp = msToDuration;
