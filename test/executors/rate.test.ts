import { Entity, Key } from '../../src/datastore';
import { isDsMigrateError } from '../../src/errors';
import { LocalExecutor } from '../../src/executors';
import { AddFieldData, CopyModelData, CopyModelDataToNamespace, RemoveFieldData, type Operation } from '../../src/operations';
import { dispatchOf, type DispatchSpec } from '../../src/executors/cloud-tasks';
import { encodeDispatch } from '../../src/executors/cloud-tasks/dispatch-spec';
import { layoutRate, rateFor, RATE_WINDOW_MS, RateLimiter, sliceShare, type RateOption } from '../../src/sharding';
import { formatLimit } from '../../src/cli/output';
import { runCli, tempApp } from '../support/cli';
import { describeEachFlavour, emulatorHosts, uniqueProject } from '../support/emulators';

function refusal(make: () => unknown): unknown {
  try {
    make();
  } catch (error) {
    return error;
  }
  throw new Error('not refused');
}

describe('the rate option', () => {
  it.each([
    ['0', { maxEntitiesPerSecond: 0 }],
    ['a negative rate', { maxEntitiesPerSecond: -100 }],
    ['a string', { maxEntitiesPerSecond: '500' }],
    ['NaN', { maxEntitiesPerSecond: Number.NaN }],
    ['no rate at all', {}],
  ])('refuses %s with BAD_INPUT naming rate.maxEntitiesPerSecond', (_, rate) => {
    const error = refusal(() => new AddFieldData('Person', 'colour', { default: 'blue', rate: rate as { maxEntitiesPerSecond: number } }));
    expect(isDsMigrateError(error, 'BAD_INPUT')).toBe(true);
    expect(String(error)).toMatch(/AddFieldData on Person: rate\.maxEntitiesPerSecond must be a positive number/);
  });

  it('refuses a rampUp that is not true or false', () => {
    const error = refusal(() => new RemoveFieldData('Person', 'x', { rate: { maxEntitiesPerSecond: 10, rampUp: 'yes' as unknown as boolean } }));
    expect(isDsMigrateError(error, 'BAD_INPUT')).toBe(true);
    expect(String(error)).toMatch(/rate\.rampUp must be true or false/);
  });

  it("uses the operation's rate, else the run-wide one, leaving rampUp to the job's plan where it is not given", () => {
    const own = new AddFieldData('P', 'x', { default: 1, rate: { maxEntitiesPerSecond: 50 } });
    expect(rateFor(own, 900)).toEqual({ maxEntitiesPerSecond: 50 });
    expect(rateFor(new AddFieldData('P', 'x', { default: 1 }), 900)).toEqual({ maxEntitiesPerSecond: 900 });
    expect(rateFor(new AddFieldData('P', 'x', { default: 1 }))).toBeUndefined();
    expect(layoutRate({ maxEntitiesPerSecond: 900 }, { rampsByDefault: true })).toEqual({ maxEntitiesPerSecond: 900, rampUp: true });
    expect(layoutRate({ maxEntitiesPerSecond: 900 }, {})).toEqual({ maxEntitiesPerSecond: 900, rampUp: false });
    expect(layoutRate({ maxEntitiesPerSecond: 900, rampUp: false }, { rampsByDefault: true })).toEqual({ maxEntitiesPerSecond: 900, rampUp: false });
  });

  it('keeps rate in a reversed operation', () => {
    const rate = { maxEntitiesPerSecond: 70, rampUp: true };
    expect(new CopyModelData('P', 'Q', { rate }).reverse().scope.rate).toEqual(rate);
    expect(new AddFieldData('P', 'x', { default: 1, rate }).reverse().scope.rate).toEqual(rate);
  });

  it('is refused by LocalExecutor when not positive', () => {
    expect(
      isDsMigrateError(
        refusal(() => new LocalExecutor({ maxEntitiesPerSecond: 0 })),
        'BAD_INPUT',
      ),
    ).toBe(true);
  });
});

describeEachFlavour('a rate-limited LocalExecutor run', (ctx) => {
  it('writes no more than rate × 10 s in any 10-second window of its (injected) clock, over all its shards', async () => {
    const store = await ctx.connect();
    await store.save(Array.from({ length: 300 }, (_, i) => Entity.from(Key.of('Paced', i + 1), { n: i })));
    // The limiter's clock moves only when it sleeps: the run is as fast as the emulator, the budget exact.
    const clock = { t: 0, now: () => clock.t, sleep: async (ms: number) => void (clock.t += ms) };
    const limiters: RateLimiter[] = [];
    const limits = new Set<number | undefined>();
    const rate = 20;
    const executor = new LocalExecutor({
      concurrency: 4,
      makeLimiter: (r) => {
        limiters.push(new RateLimiter({ ...r, now: clock.now, sleep: clock.sleep }));
        return limiters[limiters.length - 1];
      },
    });
    const result = await executor.runOperation({
      store,
      job: { namespace: '', id: 'paced#1' },
      operation: new AddFieldData('Paced', 'colour', { default: 'blue', shardCount: 4, rate: { maxEntitiesPerSecond: rate } }),
      onProgress: (p) => limits.add(p.rateLimit),
    });
    expect(result.changed).toBe(300);
    expect([...limits]).toEqual([rate]);
    // One limiter for all four shards; every batch paid for, none larger than 2.5 s of the rate.
    expect(limiters).toHaveLength(1);
    const { grants } = limiters[0];
    expect(grants.reduce((n, g) => n + g.entities, 0)).toBeGreaterThanOrEqual(300);
    expect(Math.max(...grants.map((g) => g.entities))).toBeLessThanOrEqual(50);
    for (const first of grants) {
      const inWindow = grants.filter((g) => g.at >= first.at && g.at <= first.at + RATE_WINDOW_MS).reduce((n, g) => n + g.entities, 0);
      expect(inWindow).toBeLessThanOrEqual((rate * RATE_WINDOW_MS) / 1000);
    }
    // 300 entities at 20/s take at least 15 s of the limiter's clock (the spacing is paid before each grant).
    expect(clock.t).toBeGreaterThanOrEqual(15_000);
  });
});

describeEachFlavour('the ramp of a rate without rampUp', (ctx) => {
  const rampOf = async (operation: Operation, id: string): Promise<boolean | undefined> => {
    const store = await ctx.connect();
    const rates: RateOption[] = [];
    const executor = new LocalExecutor({ maxEntitiesPerSecond: 100_000, makeLimiter: (r) => (rates.push(r), new RateLimiter(r)) });
    await executor.runOperation({ store, job: { namespace: '', id }, operation });
    expect(rates).toHaveLength(1);
    return rates[0].rampUp;
  };

  it('is on for a copy into a kind that is empty when the job is planned, and off for one into a kind that holds data or for other operations', async () => {
    const store = await ctx.connect();
    await store.save(Array.from({ length: 30 }, (_, i) => Entity.from(Key.of('RampSource', i + 1), { n: i })));
    await store.save([Entity.from(Key.of('RampFull', 999), { n: 0 })]);
    expect(await rampOf(new CopyModelData('RampSource', 'RampEmpty'), 'ramp-empty#0.0')).toBe(true);
    expect(await rampOf(new CopyModelData('RampSource', 'RampFull'), 'ramp-full#0.0')).toBe(false);
    expect(await rampOf(new CopyModelDataToNamespace('RampSource', 'ramp-ns'), 'ramp-ns#0.0')).toBe(true);
    expect(await rampOf(new CopyModelData('RampSource', 'RampEmpty2', { rate: { maxEntitiesPerSecond: 100_000, rampUp: false } }), 'ramp-off#0.0')).toBe(false);
    expect(await rampOf(new AddFieldData('RampSource', 'colour', { default: 'blue' }), 'ramp-add#0.0')).toBe(false);
    // Resumed, the job keeps the plan's answer, though the target is no longer empty.
    expect(await rampOf(new CopyModelData('RampSource', 'RampEmpty'), 'ramp-empty#0.0')).toBe(true);
  });
});

describe('dsmigrate migrate --max-rate', () => {
  const hosts = emulatorHosts();
  const host = hosts.firestore ?? Object.values(hosts)[0]!;
  const projectId = uniqueProject('rate');
  const env = { ...process.env, DATASTORE_EMULATOR_HOST: host, DATASTORE_PROJECT_ID: projectId, GOOGLE_CLOUD_PROJECT: projectId };
  const app = tempApp({
    'migrations/0001_colour.ts': `import { defineMigration, AddFieldData } from 'datastore-migrate';
export default defineMigration({ operations: [new AddFieldData('Person', 'colour', { default: 'blue' })] });
`,
  });

  it.each([
    ['0', /--max-rate must be a positive number of entities per second, not 0/],
    ['-5', /--max-rate must be a positive number of entities per second, not -5/],
    ['fast', /--max-rate must be a positive number of entities per second, not a number/],
  ])('refuses --max-rate %s with exit 2, naming the flag', async (value, message) => {
    const result = await runCli(['migrate', `--max-rate=${value}`], { cwd: app, env });
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 2, stderr: expect.stringMatching(message) as string });
  });
});

describe('a Cloud Tasks run-wide rate', () => {
  const dispatch: DispatchSpec = { queue: 'q', url: 'http://w', auth: { kind: 'hmac' }, dispatchDeadlineMs: 600_000, sliceBudgetMs: 60_000, maxStepAttempts: 5, maxEntitiesPerSecond: 400 };
  const stored = (spec: object) => dispatchOf({ id: 'run-rate', settings: JSON.stringify(spec) });

  it("is kept in the run's dispatch settings, and a stored rate that is not positive is refused as corrupt", () => {
    expect(dispatchOf({ id: 'run-rate', settings: encodeDispatch(dispatch) }).maxEntitiesPerSecond).toBe(400);
    const { maxEntitiesPerSecond: _, ...without } = dispatch;
    expect(stored(without).maxEntitiesPerSecond).toBeUndefined();
    expect(() => stored({ ...dispatch, maxEntitiesPerSecond: 0 })).toThrow(/Cloud Tasks settings/);
  });

  it('gives each of the step’s slices its share: eight shards at 400/s write 50/s each', () => {
    const rate = rateFor(new AddFieldData('Person', 'colour', { default: 'blue' }), dispatch.maxEntitiesPerSecond)!;
    expect(sliceShare(layoutRate(rate, {}), 8)).toEqual({ maxEntitiesPerSecond: 50, rampUp: false });
  });
});

describe('the progress line', () => {
  const progress = { shardsTotal: 4, shardsDone: 1, scanned: 10, changed: 10, deleted: 0, skipped: 0, failed: 0 };
  it('shows the limit in force when there is one, and nothing otherwise', () => {
    expect(formatLimit({ ...progress, rateLimit: 749.6 })).toBe(' (limit 750/s)');
    expect(formatLimit(progress)).toBe('');
  });
});
