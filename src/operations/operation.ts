import type { Datastore } from '../datastore';
import { DsMigrateError } from '../errors';
import { jsonOf } from './describe';

/**
 * The base of every step a migration holds: what it is (type, arguments, a one-line description), how
 * it is checked before it runs, and how it is undone. Two kinds of operation stand on it: a
 * `DataOperation` (src/operations/data-operation.ts) scans a kind in shards, deciding per entity; a
 * `RunFunction` (src/operations/run-function.ts) runs once. The drivers tell them apart with
 * `isDataOperation`.
 */
export abstract class Operation {
  protected constructor(
    readonly type: string,
    /** Names the operation in messages after its type ("on Person", or a function's name), and in their context. */
    private readonly about: { name: string; context: Record<string, unknown> },
    /** Its own options too: each operation's `reverse` option has its own type beside 'noop'. */
    protected readonly options: { reverse?: unknown },
  ) {
    if (typeof options.reverse === 'string' && options.reverse !== 'noop')
      throw this.fail(`has reverse ${JSON.stringify(options.reverse)}; the only word it takes is 'noop' (back out leaving the data as it is).`);
  }

  /** One human line, for `dsmigrate plan`. */
  describe(): string {
    return this.summary();
  }

  /** Type and arguments as stable JSON (functions as source text), for checksums and `plan --json`. */
  toJSON(): Record<string, unknown> {
    return jsonOf(this.shape()) as Record<string, unknown>;
  }

  /**
   * What a stored run is checked against when it is resumed: toJSON without function bodies, which
   * differ between compilers (jest, tsx, the CLI) of the same migration file.
   */
  fingerprint(): string {
    return JSON.stringify(jsonOf(this.shape(), false));
  }

  /** The constructor's arguments: `new (the class named by type)(...deconstruct())` makes this operation again (src/migrations/writer.ts writes files with it). */
  abstract deconstruct(): unknown[];

  /** What toJSON and fingerprint describe. */
  protected shape(): Record<string, unknown> {
    return { type: this.type, ...(this.leavesDataOnBackOut ? { reverse: 'noop' } : {}), ...this.args() };
  }

  /** Has an operation that undoes it (`reverse()`). */
  get reversible(): boolean {
    return false;
  }

  /** Declared `reverse: 'noop'`: backing out records it undone and leaves its data as it is, whatever reverse it has. */
  get leavesDataOnBackOut(): boolean {
    return this.options.reverse === 'noop';
  }

  /** The operation that undoes this one, or a BAD_INPUT error saying why there is none. */
  reverse(): Operation {
    throw this.irreversible();
  }

  /** Checks what needs the data before anything runs. Writes nothing. */
  async validate(_store: Datastore): Promise<void> {}

  protected irreversible(): DsMigrateError {
    return this.fail(`is irreversible: ${this.irreversibleBecause()}`);
  }

  protected irreversibleBecause(): string {
    return 'there is no way to tell what the data was before it ran.';
  }

  /** The line `describe` starts with, e.g. `Set Person.colour to "blue" where missing`. */
  protected abstract summary(): string;
  /** The operation's own arguments, for toJSON. */
  protected abstract args(): Record<string, unknown>;

  protected fail(message: string, context: Record<string, unknown> = {}): DsMigrateError {
    return new DsMigrateError('BAD_INPUT', `${this.type} ${this.about.name} ${message}`, { ...this.about.context, operation: this.type, ...context });
  }
}
