import { Entity, propertyAccess, propertyView, type Key } from '../datastore';
import { DsMigrateError } from '../errors';
import type { ApplyContext, EntityDecision } from '../sharding';
import { DataOperation, type KindOrModel, type Postcondition } from './data-operation';
import type { ScanOptions } from './options';

export interface MapContext {
  readonly key: Key;
  readonly namespace: string;
  readonly migration?: string;
  /** True in `migrate --dry-run`: nothing will be written. */
  readonly dryRun: boolean;
  /** Deletes the entity. */
  delete(): void;
}

/**
 * Called once per entity, inside the batch's transaction (keep it free of other writes: a batch can
 * be retried). Change the entity (`entity.set('counter', n)`) to have it saved, return another Entity
 * to save that, return null or call `ctx.delete()` to delete it; change nothing and nothing is written.
 * As with @google-cloud/datastore, `entity.total` reads a property and `entity.counter = n` sets it, keeping
 * its type and index setting (docs/entities.md); returning a plain object fails on the first entity with a
 * message saying so, rather than saving nothing.
 */
export type MapFunction = (entity: Entity, ctx: MapContext) => void | Entity | null | Promise<void | Entity | null>;

export interface MapOptions extends Omit<ScanOptions, 'reverse'> {
  /** Makes the operation reversible: this function is run by the reverse; `'noop'` backs out leaving the data as it is. */
  reverse?: MapFunction | 'noop';
  /** What must hold of every entity once the function ran, for `dsmigrate verify` (e.g. `(e) => e.get('email') === String(e.get('email')).toLowerCase()`). */
  verify?: (entity: Entity) => boolean;
}

/** Runs a function on every entity of a kind: any custom change. */
export class MapFunctionOnEntities extends DataOperation {
  constructor(
    kind: KindOrModel,
    readonly fn: MapFunction,
    private readonly mapOptions: MapOptions = {},
  ) {
    super('MapFunctionOnEntities', kind, mapOptions);
    if (typeof fn !== 'function') throw this.fail(`needs a function (entity, ctx) => ..., not ${typeof fn}.`);
    if (mapOptions.reverse !== undefined && mapOptions.reverse !== 'noop' && typeof mapOptions.reverse !== 'function') throw this.fail("has a reverse that is neither a function nor 'noop'.");
    if (mapOptions.verify !== undefined && typeof mapOptions.verify !== 'function') throw this.fail('has a verify that is not a function (entity) => boolean.');
  }

  protected summary(): string {
    return `Run ${this.fn.name ? `${this.fn.name}()` : 'a function'} on every ${this.kind} entity`;
  }

  protected positional(): unknown[] {
    return [this.fn];
  }

  protected args(): Record<string, unknown> {
    return { fn: this.fn, reverse: this.mapOptions.reverse, verify: this.mapOptions.verify };
  }

  override get reversible(): boolean {
    return typeof this.mapOptions.reverse === 'function';
  }

  override reverse(): MapFunctionOnEntities {
    const reverse = this.mapOptions.reverse;
    if (typeof reverse !== 'function') throw this.irreversible();
    return new MapFunctionOnEntities(this.ref, reverse, { ...this.scanOptions(), reverse: this.fn, verify: undefined });
  }

  override get postcondition(): Postcondition | undefined {
    const verify = this.mapOptions.verify;
    return verify && ((entity) => (verify(entity) ? undefined : `fails verify()`));
  }

  protected override irreversibleBecause(): string {
    return "a function cannot be undone unless its inverse is declared: new MapFunctionOnEntities(kind, fn, {reverse: inverseFn}); to back out leaving the data as it is, {reverse: 'noop'}.";
  }

  async apply(entity: Entity, _related: readonly (Entity | undefined)[], context: ApplyContext): Promise<EntityDecision> {
    // Code written for @google-cloud/datastore's plain objects reads and assigns properties directly
    // (`entity.total`, `entity.counter = n`): the view makes those get() and set(). What the entity owns before
    // the call still tells apart what bypassed it (Object.defineProperty, `other.counter = n` on another Entity
    // returned), which would be dropped without a word.
    const own = new Set(Object.keys(entity));
    const absent = new Set<string>();
    const { view, flush } = propertyView(entity, (name) => absent.add(name));
    let deleted = false;
    const returned = await this.fn(view, {
      key: entity.key,
      namespace: entity.key.namespace,
      migration: context.migration,
      dryRun: context.dryRun,
      delete: () => {
        deleted = true;
      },
    });
    flush();
    const result = returned === view ? entity : returned;
    this.refuseAssignments(entity, own);
    if (deleted || result === null) return { action: 'delete', key: entity.key };
    const warning = absent.size > 0 ? { topic: absentTopic(absent), key: entity.key } : undefined;
    if (result instanceof Entity && result !== entity) {
      this.refuseAssignments(result, own);
      return { action: 'put', entity: result, warning };
    }
    if (result !== undefined && result !== entity) {
      // A spread of the entity ({...entity, counter: n}) carries its internals too: name only what the function added.
      const names = typeof result === 'object' ? Object.keys(result).filter((name) => !own.has(name)) : [];
      throw this.misuse(entity, `returned ${typeof result === 'object' ? `a plain object${names.length ? ` ({${names.join(', ')}})` : ''}` : `a ${typeof result}`}, which is not saved`, names);
    }
    return entity.changed ? { action: 'put', entity, warning } : { action: 'skip', warning };
  }

  private refuseAssignments(entity: Entity, own: ReadonlySet<string>): void {
    const assigned = Object.keys(entity).filter((name) => !own.has(name));
    if (assigned.length > 0) throw this.misuse(entity, `assigned ${assigned.map((name) => `entity.${name}`).join(', ')}, which an Entity does not store`, assigned);
  }

  /** The fix comes first: a skipped entity's warning shows only the start of its message. */
  private misuse(entity: Entity, what: string, names: readonly string[]): DsMigrateError {
    const name = names.find((n) => n !== 'key') ?? 'field';
    return new DsMigrateError(
      'BAD_INPUT',
      `the function ${what}: write entity.set('${name}', value) instead (read entity.get('${name}'), remove with entity.delete('${name}')). ` +
        "Unlike @google-cloud/datastore's plain objects, an Entity's properties go through its methods, so that their types and index settings survive. " +
        // No full stop: the shard engine's message goes on after this one.
        'Change the entity and return nothing, return another Entity to save that, or return null to delete it',
      { kind: this.kind, operation: this.type, key: entity.key.toString() },
    );
  }
}

/**
 * A name read that the entity lacks reads undefined, as with @google-cloud/datastore, and is reported: a misspelt
 * name is then a warning counting the entities it was read on, with example keys, rather than a silent "0 changed".
 * The names an entity lacked make one topic, as a decision carries one warning.
 */
function absentTopic(names: ReadonlySet<string>): string {
  const sorted = [...names].sort();
  const listed = sorted.slice(0, 5).map(propertyAccess).join(', ') + (sorted.length > 5 ? ` and ${sorted.length - 5} more` : '');
  return `${listed} read as undefined: no such property on the entity (misspelt? read an optional one with entity.get('${sorted[0]}'))`;
}
