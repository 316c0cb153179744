/** Fault injection: which dispatches fail, repeat or lose their answer, decided by a random source tests can seed. */

export interface FaultOptions {
  /** Fraction (0..1) of dispatches that are not sent and count as a 503 from the target, then retried. */
  failFraction?: number;
  /** Fraction (0..1) of successful dispatches that are delivered a second time (at-least-once delivery). */
  duplicateFraction?: number;
  /**
   * Fraction (0..1) of dispatches that the target answers with a 2xx but whose answer never reaches
   * the queue: the attempt counts as a missed dispatch deadline (reported at once, not after the
   * deadline) and the task is retried with the queue's backoff, although its work was done.
   */
  lostAnswerFraction?: number;
  /**
   * Fraction (0..1) of dispatches sent to the target that are sent twice at the same moment, so that
   * two deliveries of the task run at once (at-least-once delivery without any ordering).
   */
  overlappingDuplicateFraction?: number;
  /** Milliseconds waited before each dispatch (and each duplicate delivery). */
  latencyMs?: number;
}

/** A uniform random source in [0, 1), like Math.random. */
export type RandomSource = () => number;

/** mulberry32: tiny, fast and good enough for test decisions; the same seed gives the same sequence. */
export function seededRandom(seed: number): RandomSource {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface FaultRoll {
  fail: boolean;
  duplicate: boolean;
  lostAnswer: boolean;
  overlappingDuplicate: boolean;
}

function checkFraction(name: string, value: number): number {
  if (!(value >= 0 && value <= 1)) throw new RangeError(`${name} must be between 0 and 1, got ${value}`);
  return value;
}

export class FaultInjector {
  private failFraction = 0;
  private duplicateFraction = 0;
  private lostAnswerFraction = 0;
  private overlappingDuplicateFraction = 0;
  private latency = 0;

  constructor(
    initial: FaultOptions,
    private random: RandomSource,
  ) {
    // Only the fault fields: a `seed` among the caller's options must not replace `random`.
    const { failFraction, duplicateFraction, lostAnswerFraction, overlappingDuplicateFraction, latencyMs } = initial;
    this.update({ failFraction, duplicateFraction, lostAnswerFraction, overlappingDuplicateFraction, latencyMs });
  }

  update(changes: FaultOptions & { seed?: number }): void {
    if (changes.failFraction !== undefined) this.failFraction = checkFraction('failFraction', changes.failFraction);
    if (changes.duplicateFraction !== undefined) {
      this.duplicateFraction = checkFraction('duplicateFraction', changes.duplicateFraction);
    }
    if (changes.lostAnswerFraction !== undefined) {
      this.lostAnswerFraction = checkFraction('lostAnswerFraction', changes.lostAnswerFraction);
    }
    if (changes.overlappingDuplicateFraction !== undefined) {
      this.overlappingDuplicateFraction = checkFraction('overlappingDuplicateFraction', changes.overlappingDuplicateFraction);
    }
    if (changes.latencyMs !== undefined) {
      if (!(changes.latencyMs >= 0)) throw new RangeError(`latencyMs must be >= 0, got ${changes.latencyMs}`);
      this.latency = changes.latencyMs;
    }
    if (changes.seed !== undefined) this.random = seededRandom(changes.seed);
  }

  current(): Required<FaultOptions> {
    return {
      failFraction: this.failFraction,
      duplicateFraction: this.duplicateFraction,
      lostAnswerFraction: this.lostAnswerFraction,
      overlappingDuplicateFraction: this.overlappingDuplicateFraction,
      latencyMs: this.latency,
    };
  }

  get latencyMs(): number {
    return this.latency;
  }

  /**
   * Decides one dispatch's fate. The numbers are always drawn, so with a seed the n-th dispatch
   * gets the same decisions whatever the fractions or the order in which handlers answer: two
   * (fail, duplicate), then two more (lost answer, overlapping duplicate) only while either of those
   * faults is on, so that seeds chosen before they existed keep their sequences.
   */
  roll(): FaultRoll {
    const failDraw = this.random();
    const duplicateDraw = this.random();
    const laterFaultsOn = this.lostAnswerFraction > 0 || this.overlappingDuplicateFraction > 0;
    // 1 is never below a fraction: no lost answer, no overlap.
    const lostAnswerDraw = laterFaultsOn ? this.random() : 1;
    const overlappingDraw = laterFaultsOn ? this.random() : 1;
    return {
      fail: failDraw < this.failFraction,
      duplicate: duplicateDraw < this.duplicateFraction,
      lostAnswer: lostAnswerDraw < this.lostAnswerFraction,
      overlappingDuplicate: overlappingDraw < this.overlappingDuplicateFraction,
    };
  }
}
