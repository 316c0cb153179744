import { seededRandom, type RandomSource } from '../cloud-tasks';
import { DEFAULT_FAULT_SHARES, FAULT_CODES, FAULTED_METHODS, type DatastoreMethod, type DatastoreProxyOptions, type FaultCode } from './options';

/** What the proxy does to one RPC: a fault to answer with (or none), and the delay before forwarding it. */
export interface RpcFate {
  fault?: FaultCode;
  delayMs: number;
}

const AFTER_COMMIT: readonly FaultCode[] = ['deadline-after-commit', 'unavailable-after-commit'];

/** The after-commit codes follow commits only. */
function appliesTo(code: FaultCode, method: DatastoreMethod): boolean {
  return method === 'Commit' || !AFTER_COMMIT.includes(code);
}

/**
 * Decides each RPC's fate. Three numbers are drawn for every RPC, whatever its method and the settings
 * (fault or not, which code, jitter), so with a seed the n-th RPC gets the same draws: the same
 * sequence of RPCs meets the same faults.
 */
export class FaultChooser {
  private readonly random: RandomSource;
  private readonly fraction: number;
  private readonly methods: readonly DatastoreMethod[];
  private readonly shares: Readonly<Record<FaultCode, number>>;
  private readonly latencyMs: number;
  private readonly jitterMs: number;

  constructor(options: DatastoreProxyOptions) {
    this.random = options.seed === undefined ? Math.random : seededRandom(options.seed);
    this.fraction = options.faultFraction ?? 0;
    this.methods = options.faultMethods ?? FAULTED_METHODS;
    const given = options.faultShares;
    this.shares = given ? (Object.fromEntries(FAULT_CODES.map((code) => [code, given[code] ?? 0])) as Record<FaultCode, number>) : DEFAULT_FAULT_SHARES;
    this.latencyMs = options.latencyMs ?? 0;
    this.jitterMs = options.latencyJitterMs ?? 0;
  }

  choose(method: DatastoreMethod): RpcFate {
    const faultDraw = this.random();
    const codeDraw = this.random();
    const jitterDraw = this.random();
    const faulted = faultDraw < this.fraction && this.methods.includes(method);
    return { fault: faulted ? this.pick(method, codeDraw) : undefined, delayMs: this.latencyMs + jitterDraw * this.jitterMs };
  }

  /** The code at `draw` among those that apply to the method, by their shares (renormalised); none if none apply. */
  private pick(method: DatastoreMethod, draw: number): FaultCode | undefined {
    const eligible = FAULT_CODES.filter((code) => this.shares[code] > 0 && appliesTo(code, method));
    const total = eligible.reduce((sum, code) => sum + this.shares[code], 0);
    let point = draw * total;
    for (const code of eligible) {
      point -= this.shares[code];
      if (point < 0) return code;
    }
    return eligible.at(-1);
  }
}
