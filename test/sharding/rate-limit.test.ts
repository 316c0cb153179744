import { checkRate, RATE_WINDOW_MS, RateLimiter, sliceShare, type Grant } from '../../src/sharding/rate-limit';
import { isDsMigrateError } from '../../src/errors';

/** A clock that only moves when the limiter sleeps or the test says so: no wall time anywhere. */
function fakeClock(start = 1_000_000) {
  const clock = { t: start, now: () => clock.t, sleep: async (ms: number) => void (clock.t += ms) };
  return clock;
}

/** A deterministic generator, so that a failure can be replayed. */
function random(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
}

/** The most granted over any closed window of 10 s: the worst windows start at a grant. */
function worstWindow(grants: readonly Grant[]): number {
  let worst = 0;
  for (const first of grants) {
    const sum = grants.filter((g) => g.at >= first.at && g.at <= first.at + RATE_WINDOW_MS).reduce((n, g) => n + g.entities, 0);
    worst = Math.max(worst, sum);
  }
  return worst;
}

describe('RateLimiter', () => {
  it('never grants more than rate × 10 s over any 10-second window, whatever the grant sizes and timing', async () => {
    const next = random(14);
    for (let round = 0; round < 40; round++) {
      const clock = fakeClock();
      const rate = 1 + Math.floor(next() * 2000);
      const limiter = new RateLimiter({ maxEntitiesPerSecond: rate, now: clock.now, sleep: clock.sleep });
      for (let i = 0; i < 150; i++) {
        // Requests arrive at once, in bursts, or after a pause long enough to leave the window idle.
        const pause = next();
        if (pause > 0.9) clock.t += Math.floor(next() * 3 * RATE_WINDOW_MS);
        else if (pause > 0.5) clock.t += Math.floor(next() * 500);
        const size = 1 + Math.floor(next() * limiter.largestGrant);
        expect(await limiter.acquire(size)).toBe(true);
      }
      expect(limiter.grants).toHaveLength(150);
      expect(worstWindow(limiter.grants)).toBeLessThanOrEqual((rate * RATE_WINDOW_MS) / 1000);
    }
  });

  it('keeps the budget when several shards ask at once', async () => {
    const clock = fakeClock();
    const limiter = new RateLimiter({ maxEntitiesPerSecond: 120, now: clock.now, sleep: clock.sleep });
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let i = 0; i < 20; i++) await limiter.acquire(limiter.largestGrant);
      }),
    );
    expect(limiter.grants.reduce((n, g) => n + g.entities, 0)).toBe(160 * limiter.largestGrant);
    expect(worstWindow(limiter.grants)).toBeLessThanOrEqual(1200);
  });

  it('waits before its first grant, so that a limiter replacing another (the next slice) cannot burst', async () => {
    const clock = fakeClock();
    const limiter = new RateLimiter({ maxEntitiesPerSecond: 100, now: clock.now, sleep: clock.sleep });
    await limiter.acquire(50);
    // 250 entities reserved at the start (a largest grant: 2.5 s at 100/s), then 50 more.
    expect(limiter.grants[0].at - 1_000_000).toBe(3000);
  });

  it('caps a batch at what a quarter of the window allows, at least one entity and at most a full batch', () => {
    const clock = fakeClock();
    const at = (rate: number) => new RateLimiter({ maxEntitiesPerSecond: rate, now: clock.now, sleep: clock.sleep }).largestGrant;
    expect(at(10)).toBe(25);
    expect(at(0.1)).toBe(1);
    expect(at(10_000)).toBe(499);
  });

  it('grants a request larger than the window budget alone in its window', async () => {
    const clock = fakeClock();
    const limiter = new RateLimiter({ maxEntitiesPerSecond: 0.05, now: clock.now, sleep: clock.sleep });
    await limiter.acquire(1);
    await limiter.acquire(1);
    expect(limiter.grants[1].at - limiter.grants[0].at).toBeGreaterThan(RATE_WINDOW_MS);
  });

  it('grants nothing once its signal aborts', async () => {
    const clock = fakeClock();
    const stop = new AbortController();
    const limiter = new RateLimiter({ maxEntitiesPerSecond: 10, now: clock.now, sleep: async () => stop.abort() });
    expect(await limiter.acquire(5, stop.signal)).toBe(false);
    expect(limiter.grants).toHaveLength(0);
  });

  describe('ramp-up (500/50/5)', () => {
    const MINUTE = 60_000;

    it('starts at 500/s and adds 50% every 5 minutes, capped at the maximum', () => {
      const clock = fakeClock(0);
      const limiter = new RateLimiter({ maxEntitiesPerSecond: 2000, rampUp: true, now: clock.now, sleep: clock.sleep });
      expect(limiter.rateAt(0)).toBe(500);
      expect(limiter.rateAt(5 * MINUTE - 1)).toBe(500);
      expect(limiter.rateAt(5 * MINUTE)).toBe(750);
      expect(limiter.rateAt(10 * MINUTE)).toBe(1125);
      expect(limiter.rateAt(15 * MINUTE)).toBe(1687.5);
      expect(limiter.rateAt(20 * MINUTE)).toBe(2000);
      expect(limiter.rateAt(60 * MINUTE)).toBe(2000);
    });

    it('starts at the maximum when it is below 500/s, and counts from the operation start', () => {
      const clock = fakeClock(10 * MINUTE);
      expect(new RateLimiter({ maxEntitiesPerSecond: 300, rampUp: true, now: clock.now }).currentRate).toBe(300);
      // A Cloud Tasks slice started 10 minutes into its operation ramps from the operation's start.
      expect(new RateLimiter({ maxEntitiesPerSecond: 5000, rampUp: true, rampFrom: 0, now: clock.now }).currentRate).toBe(1125);
    });

    it('holds the granted entities to the ramped rate', async () => {
      const clock = fakeClock(0);
      const limiter = new RateLimiter({ maxEntitiesPerSecond: 5000, rampUp: true, now: clock.now, sleep: clock.sleep });
      while (clock.t < 11 * MINUTE) await limiter.acquire(400);
      const inFirstStep = limiter.grants.filter((g) => g.at < 5 * MINUTE);
      expect(worstWindow(inFirstStep)).toBeLessThanOrEqual(5000);
      const inThirdStep = limiter.grants.filter((g) => g.at >= 10 * MINUTE);
      expect(worstWindow(inThirdStep)).toBeLessThanOrEqual(11_250);
      expect(worstWindow(inThirdStep)).toBeGreaterThan(5000);
    });
  });
});

describe('checkRate and sliceShare', () => {
  it.each([0, -5, Number.NaN, Number.POSITIVE_INFINITY, '100', undefined])('refuses %p, naming the option', (value) => {
    let error: unknown;
    try {
      checkRate(value, 'rate.maxEntitiesPerSecond');
    } catch (e) {
      error = e;
    }
    expect(isDsMigrateError(error, 'BAD_INPUT')).toBe(true);
    expect(String(error)).toContain('rate.maxEntitiesPerSecond');
  });

  it('gives each slice the rate divided by the shards, so that all slices at once stay within it', () => {
    expect(sliceShare({ maxEntitiesPerSecond: 1000, rampUp: true }, 8)).toEqual({ maxEntitiesPerSecond: 125, rampUp: true });
    expect(sliceShare({ maxEntitiesPerSecond: 1000 }, 0)).toEqual({ maxEntitiesPerSecond: 1000 });
  });

  it('keeps eight slices running at once, each with its own limiter, within the run-wide budget', async () => {
    const clock = fakeClock();
    const share = sliceShare({ maxEntitiesPerSecond: 800 }, 8);
    const limiters = Array.from({ length: 8 }, () => new RateLimiter({ ...share, now: clock.now, sleep: clock.sleep }));
    // Every slice takes its turn, each as fast as its own limiter allows, all on one clock.
    for (let round = 0; round < 30; round++) for (const l of limiters) await l.acquire(l.largestGrant);
    const all = limiters.flatMap((l) => l.grants).sort((a, b) => a.at - b.at);
    expect(worstWindow(all)).toBeLessThanOrEqual(8000);
  });
});
