import { Entity, type Key } from '../datastore';
import type { ApplyContext, EntityDecision } from '../sharding';
import { Operation, type KindOrModel } from './operation';
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
 * be retried). Change the entity to have it saved, return another Entity to save that, return null
 * or call `ctx.delete()` to delete it; change nothing and nothing is written.
 */
export type MapFunction = (entity: Entity, ctx: MapContext) => void | Entity | null | Promise<void | Entity | null>;

export interface MapOptions extends ScanOptions {
  /** Makes the operation reversible: this function is run by the reverse. */
  reverse?: MapFunction;
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
  }

  protected summary(): string {
    return `Run ${this.fn.name ? `${this.fn.name}()` : 'a function'} on every ${this.kind} entity`;
  }

  protected args(): Record<string, unknown> {
    return { fn: this.fn, reverse: this.mapOptions.reverse };
  }

  override get reversible(): boolean {
    return this.mapOptions.reverse !== undefined;
  }

  override reverse(): MapFunctionOnEntities {
    if (!this.mapOptions.reverse) throw this.irreversible();
    return new MapFunctionOnEntities(this.ref, this.mapOptions.reverse, { ...this.scanOptions(), reverse: this.fn });
  }

  protected override irreversibleBecause(): string {
    return 'a function cannot be undone unless its inverse is declared: new MapFunctionOnEntities(kind, fn, {reverse: inverseFn}).';
  }

  async apply(entity: Entity, _related: readonly (Entity | undefined)[], context: ApplyContext): Promise<EntityDecision> {
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
    if (deleted || result === null) return { action: 'delete', key: entity.key };
    if (result instanceof Entity && result !== entity) return { action: 'put', entity: result };
    if (result !== undefined && result !== entity) throw new TypeError(`the function returned ${typeof result}; return nothing, an Entity or null`);
    return entity.changed ? { action: 'put', entity } : { action: 'skip' };
  }
}
