import { Entity, type Key } from '../datastore';
import { DsMigrateError } from '../errors';
import type { ApplyContext, EntityDecision } from '../sharding';
import { Operation, type KindOrModel, type Postcondition } from './operation';
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
 * Assigning `entity.counter = n`, as with @google-cloud/datastore, or returning a plain object fails
 * on the first entity with a message saying so, rather than saving nothing.
 */
export type MapFunction = (entity: Entity, ctx: MapContext) => void | Entity | null | Promise<void | Entity | null>;

export interface MapOptions extends ScanOptions {
  /** Makes the operation reversible: this function is run by the reverse. */
  reverse?: MapFunction;
  /** What must hold of every entity once the function ran, for `dsmigrate verify` (e.g. `(e) => e.get('email') === String(e.get('email')).toLowerCase()`). */
  verify?: (entity: Entity) => boolean;
}

/** Runs a function on every entity of a kind: any custom change. */
export class MapFunctionOnEntities extends Operation {
  constructor(
    kind: KindOrModel,
    readonly fn: MapFunction,
    private readonly mapOptions: MapOptions = {},
  ) {
    super('MapFunctionOnEntities', kind, mapOptions);
    if (typeof fn !== 'function') throw this.fail(`needs a function (entity, ctx) => ..., not ${typeof fn}.`);
    if (mapOptions.reverse !== undefined && typeof mapOptions.reverse !== 'function') throw this.fail('has a reverse that is not a function.');
    if (mapOptions.verify !== undefined && typeof mapOptions.verify !== 'function') throw this.fail('has a verify that is not a function (entity) => boolean.');
  }

  protected summary(): string {
    return `Run ${this.fn.name ? `${this.fn.name}()` : 'a function'} on every ${this.kind} entity`;
  }

  protected args(): Record<string, unknown> {
    return { fn: this.fn, reverse: this.mapOptions.reverse, verify: this.mapOptions.verify };
  }

  override get reversible(): boolean {
    return this.mapOptions.reverse !== undefined;
  }

  override reverse(): MapFunctionOnEntities {
    if (!this.mapOptions.reverse) throw this.irreversible();
    return new MapFunctionOnEntities(this.ref, this.mapOptions.reverse, { ...this.scanOptions(), reverse: this.fn, verify: undefined });
  }

  override get postcondition(): Postcondition | undefined {
    const verify = this.mapOptions.verify;
    return verify && ((entity) => (verify(entity) ? undefined : `fails verify()`));
  }

  protected override irreversibleBecause(): string {
    return 'a function cannot be undone unless its inverse is declared: new MapFunctionOnEntities(kind, fn, {reverse: inverseFn}).';
  }

  async apply(entity: Entity, _related: readonly (Entity | undefined)[], context: ApplyContext): Promise<EntityDecision> {
    // An Entity keeps its properties apart from the object. Code written for @google-cloud/datastore's
    // plain objects (`entity.counter = n`) adds an own property to the instance instead, which would be
    // dropped without a word: what the instance owns before the call tells such additions apart.
    const own = new Set(Object.keys(entity));
    let deleted = false;
    const result = await this.fn(entity, {
      key: entity.key,
      namespace: entity.key.namespace,
      migration: context.migration,
      dryRun: context.dryRun,
      delete: () => {
        deleted = true;
      },
    });
    this.refuseAssignments(entity, own);
    if (deleted || result === null) return { action: 'delete', key: entity.key };
    if (result instanceof Entity && result !== entity) {
      this.refuseAssignments(result, own);
      return { action: 'put', entity: result };
    }
    if (result !== undefined && result !== entity) {
      // A spread of the entity ({...entity, counter: n}) carries its internals too: name only what the function added.
      const names = typeof result === 'object' ? Object.keys(result).filter((name) => !own.has(name)) : [];
      throw this.misuse(entity, `returned ${typeof result === 'object' ? `a plain object${names.length ? ` ({${names.join(', ')}})` : ''}` : `a ${typeof result}`}, which is not saved`, names);
    }
    return entity.changed ? { action: 'put', entity } : { action: 'skip' };
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
