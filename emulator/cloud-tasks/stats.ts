/** Counters a test can assert on. */
export interface EmulatorStats {
  /** Attempts of tasks: every increment of a task's dispatchCount, injected failures included. */
  dispatches: number;
  /** Attempts answered with a 2xx. */
  successes: number;
  /** Attempts that failed: non-2xx, timeout, connection error or injected. */
  failures: number;
  /** The part of `failures` that fault injection caused (not sent to the target). */
  injectedFailures: number;
  /** The part of `failures` that the target answered with a 2xx, but whose answer was lost (lostAnswerFraction). */
  lostAnswers: number;
  /** Attempts that hit their dispatch deadline. */
  timeouts: number;
  /** Extra deliveries of tasks that had already succeeded (duplicateFraction). */
  duplicates: number;
  /** Extra deliveries sent together with an attempt, running at the same time (overlappingDuplicateFraction). */
  overlappingDuplicates: number;
  /** Tasks given up on after their queue's retry limits. */
  dropped: number;
  /** HTTP requests actually sent: dispatches minus injected failures, plus both kinds of duplicates. */
  requestsSent: number;
}

export const emptyStats = (): EmulatorStats => ({
  dispatches: 0,
  successes: 0,
  failures: 0,
  injectedFailures: 0,
  lostAnswers: 0,
  timeouts: 0,
  duplicates: 0,
  overlappingDuplicates: 0,
  dropped: 0,
  requestsSent: 0,
});
