/** What the Datastore proxy takes, and the parsing of its command-line forms (shared by `dsmigrate emulator` and tests). */

/**
 * The faults the proxy can answer with. The first four are answered before the request reaches the
 * emulator (nothing happened); the two `-after-commit` ones are answered after the emulator applied a
 * commit, so the client sees an error for a write that did land: an unknown outcome.
 */
export const FAULT_CODES = ['aborted', 'unavailable', 'resource-exhausted', 'deadline-exceeded', 'deadline-after-commit', 'unavailable-after-commit'] as const;
export type FaultCode = (typeof FAULT_CODES)[number];

/** The RPCs of google.datastore.v1.Datastore, as the proxy counts them. */
export const DATASTORE_METHODS = ['Lookup', 'RunQuery', 'RunAggregationQuery', 'BeginTransaction', 'Commit', 'Rollback', 'AllocateIds', 'ReserveIds'] as const;
export type DatastoreMethod = (typeof DATASTORE_METHODS)[number];

/** The RPCs that faults are injected into by default; the others are forwarded (with the latency) and never fail here. */
export const FAULTED_METHODS: readonly DatastoreMethod[] = ['Lookup', 'RunQuery', 'BeginTransaction', 'Commit', 'Rollback'];

/** Every code with the same share: what `--datastore-fault-fraction` alone injects. */
export const DEFAULT_FAULT_SHARES: Readonly<Record<FaultCode, number>> = Object.fromEntries(FAULT_CODES.map((code) => [code, 1])) as Record<FaultCode, number>;

export interface DatastoreProxyOptions {
  /** `host:port` of the emulator behind the proxy. */
  target: string;
  /** Port to listen on; 0 (the default) picks a free one. */
  port?: number;
  /** Interface to listen on. Default 127.0.0.1. */
  hostname?: string;
  /** Fraction (0..1) of the RPCs of FAULTED_METHODS answered with a fault. Default 0. */
  faultFraction?: number;
  /**
   * Relative shares of the fault codes among the faults (only codes that apply to an RPC are drawn from:
   * the after-commit codes only for Commit). Codes left out get none; default every code alike.
   */
  faultShares?: Partial<Record<FaultCode, number>>;
  /** The RPCs faults are injected into (default FAULTED_METHODS): `['Commit']` fails commits alone. */
  faultMethods?: readonly DatastoreMethod[];
  /** Milliseconds added before every RPC is forwarded, plus up to `latencyJitterMs` more, uniformly drawn. */
  latencyMs?: number;
  latencyJitterMs?: number;
  /** Makes the fault and jitter draws repeatable: the same seed gives the same faults for the same sequence of RPCs. */
  seed?: number;
  /**
   * Writes per second above which a commit that writes an entity once more is answered ABORTED before it
   * is forwarded, as contention on a hot entity is answered in production. Default: no limit.
   */
  hotLimit?: number;
  /** Seconds over which an entity must be written more than `hotRatePerSecond` a second to be reported hot. Default 10. */
  hotWindowSeconds?: number;
  /** Default 1: production sustains about one write a second to one entity (entity group). */
  hotRatePerSecond?: number;
}

/** A refused option: names it and quotes what was given, for the CLI to turn into a usage error. */
export class DatastoreProxyOptionError extends Error {
  constructor(
    readonly option: string,
    message: string,
  ) {
    super(message);
    this.name = 'DatastoreProxyOptionError';
  }
}

/** Parses `aborted=2,unavailable=1,...`: a code alone counts 1. */
export function parseFaultShares(text: string, option = '--datastore-fault-codes'): Partial<Record<FaultCode, number>> {
  const shares: Partial<Record<FaultCode, number>> = {};
  for (const part of text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const [name, value] = part.split('=').map((s) => s.trim());
    if (!(FAULT_CODES as readonly string[]).includes(name)) {
      throw new DatastoreProxyOptionError(option, `${option}: unknown fault code ${JSON.stringify(name)}; the codes are ${FAULT_CODES.join(', ')}.`);
    }
    const share = value === undefined ? 1 : Number(value);
    if (!(Number.isFinite(share) && share >= 0)) throw new DatastoreProxyOptionError(option, `${option}: the share of ${name} must be a number 0 or more, not ${JSON.stringify(value)}.`);
    shares[name as FaultCode] = share;
  }
  if (!Object.values(shares).some((share) => share > 0)) throw new DatastoreProxyOptionError(option, `${option} gives no code a share above 0: ${JSON.stringify(text)}.`);
  return shares;
}

/** Parses `commit,lookup` (method names in any case, `runQuery` or `run-query`). */
export function parseFaultMethods(text: string, option = '--datastore-fault-methods'): DatastoreMethod[] {
  const byName = new Map(DATASTORE_METHODS.map((method) => [method.toLowerCase(), method]));
  const methods = text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)
    .map((name) => {
      const method = byName.get(name.replace(/-/g, '').toLowerCase());
      if (!method) throw new DatastoreProxyOptionError(option, `${option}: unknown RPC ${JSON.stringify(name)}; the RPCs are ${DATASTORE_METHODS.join(', ')}.`);
      return method;
    });
  if (methods.length === 0) throw new DatastoreProxyOptionError(option, `${option} names no RPC.`);
  return methods;
}

/** Parses `n` or `n,jitter` (milliseconds). */
export function parseLatency(text: string, option = '--datastore-latency-ms'): { latencyMs: number; latencyJitterMs: number } {
  const parts = text.split(',').map((p) => p.trim());
  const numbers = parts.map(Number);
  if (parts.length > 2 || parts.some((p) => p === '') || !numbers.every((n) => Number.isFinite(n) && n >= 0)) {
    throw new DatastoreProxyOptionError(option, `${option} takes milliseconds as n or n,jitter (each 0 or more), not ${JSON.stringify(text)}.`);
  }
  return { latencyMs: numbers[0], latencyJitterMs: numbers[1] ?? 0 };
}

/** Checks the numeric options, so that a bad value fails at start and not on the first RPC. */
export function checkOptions(options: DatastoreProxyOptions): void {
  const fraction = options.faultFraction ?? 0;
  if (!(fraction >= 0 && fraction <= 1)) throw new DatastoreProxyOptionError('faultFraction', `faultFraction must be between 0 and 1, got ${fraction}.`);
  for (const [name, value] of Object.entries({ latencyMs: options.latencyMs, latencyJitterMs: options.latencyJitterMs, hotLimit: options.hotLimit, hotRatePerSecond: options.hotRatePerSecond })) {
    if (value !== undefined && !(Number.isFinite(value) && value >= 0)) throw new DatastoreProxyOptionError(name, `${name} must be a number 0 or more, got ${value}.`);
  }
  const window = options.hotWindowSeconds;
  if (window !== undefined && !(Number.isInteger(window) && window >= 1))
    throw new DatastoreProxyOptionError('hotWindowSeconds', `hotWindowSeconds must be a whole number of seconds, 1 or more, got ${window}.`);
}
