import type { Datastore } from '../datastore';
import { Operation } from './operation';

/** What a RunFunction's function is given. */
export interface FunctionContext {
  /** The store the run migrates (this package's lossless client: src/datastore). */
  readonly store: Datastore;
  /** The migration's id, e.g. `default:0004_seed_settings`. */
  readonly migration: string;
  /** True in `migrate --dry-run`: write nothing, report what would happen. */
  readonly dryRun: boolean;
  /** Aborted once the run lost its lease (another run took over): stop, and write nothing more. */
  readonly signal: AbortSignal;
  /** A line for the run's report: printed by `migrate`, and logged by the worker under Cloud Tasks. */
  log(message: string): void;
}

/**
 * A step that runs once per migration: create a config entity, call an API, backfill a counter from an
 * aggregate. It may return how many things it changed, for the run's report. It runs again if its
 * process dies before the step is recorded complete, so it must be idempotent (docs/operations.md, RunFunction).
 */
export type StepFunction = (context: FunctionContext) => void | number | Promise<void | number>;

export interface RunFunctionOptions {
  /** Undoes the function when the migration is backed out; `'noop'` backs out leaving things as they are. Without it the step is irreversible. */
  reverse?: StepFunction | 'noop';
  /** The line `plan` and `status` show; the function's name otherwise. */
  description?: string;
}

/** Django's RunPython: a plain function as a migration's step, run once, under the run's lease. */
export class RunFunction extends Operation {
  constructor(
    readonly fn: StepFunction,
    private readonly fnOptions: RunFunctionOptions = {},
  ) {
    super('RunFunction', { name: nameOf(fn, fnOptions), context: {} }, fnOptions ?? {});
    if (typeof fn !== 'function') throw this.fail(`needs a function (context) => ..., not ${typeof fn}.`);
    if (typeof fnOptions !== 'object' || fnOptions === null) throw this.fail('takes its options as an object: new RunFunction(fn, { reverse, description }).');
    const { reverse, description } = fnOptions;
    if (reverse !== undefined && reverse !== 'noop' && typeof reverse !== 'function') throw this.fail("has a reverse that is neither a function nor 'noop'.");
    if (description !== undefined && (typeof description !== 'string' || !description.trim())) throw this.fail('has a description that is not a non-empty string.');
  }

  /** Calls the function; its count (0 when it returns none), checked. */
  async invoke(context: FunctionContext): Promise<number> {
    const count = await this.fn(context);
    if (count === undefined) return 0;
    if (typeof count !== 'number' || !Number.isInteger(count) || count < 0) throw this.fail(`returned ${JSON.stringify(count)}: return nothing, or how many things it changed (a whole number ≥ 0).`);
    return count;
  }

  override get reversible(): boolean {
    return typeof this.fnOptions.reverse === 'function';
  }

  override reverse(): RunFunction {
    const reverse = this.fnOptions.reverse;
    if (typeof reverse !== 'function') throw this.irreversible();
    return new RunFunction(reverse, { reverse: this.fn, description: `Undo: ${this.summary()}` });
  }

  deconstruct(): unknown[] {
    return [this.fn, this.fnOptions];
  }

  protected summary(): string {
    return this.fnOptions.description ?? `Run ${nameOf(this.fn, {})}`;
  }

  protected args(): Record<string, unknown> {
    return { fn: this.fn, reverse: this.fnOptions.reverse, description: this.fnOptions.description };
  }

  protected override irreversibleBecause(): string {
    return "it has no reverse function: give one (new RunFunction(fn, { reverse })), or declare reverse: 'noop' to back out leaving things as they are.";
  }
}

function nameOf(fn: unknown, options: RunFunctionOptions | undefined): string {
  if (typeof options?.description === 'string') return JSON.stringify(options.description);
  return typeof fn === 'function' && fn.name ? fn.name : 'a function';
}

/** Whether an operation runs once (a RunFunction); by shape, as isDataOperation. */
export function isRunFunction(operation: Operation): operation is RunFunction {
  return typeof (operation as { invoke?: unknown }).invoke === 'function';
}
