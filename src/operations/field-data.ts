import type { Entity, Value } from '../datastore';
import { DsMigrateError } from '../errors';
import type { DataOperation, KindOrModel } from './data-operation';
import type { ScanOptions } from './options';

/** A value, or a function of the entity (read it; it may be async) that makes one per entity. */
export type DefaultValue = Value | ((entity: Entity) => Value | Promise<Value>);

/** What AddFieldData writes, and what a RemoveFieldData declares to be reversible. */
export interface FieldDefault {
  default: DefaultValue;
  /** Also replace values already present (by default they are kept: new code may have written them). */
  overwrite?: boolean;
  /** Index setting for the new values; by default the model's, or indexed. */
  indexed?: boolean;
}

/** How AddFieldData and RemoveFieldData make each other as their reverse. */
interface FieldDataMakers {
  add(kind: KindOrModel, name: string, options: ScanOptions & FieldDefault): DataOperation;
  remove(kind: KindOrModel, name: string, options: Omit<ScanOptions, 'reverse'> & { reverse: FieldDefault }): DataOperation;
}

const makers: Partial<FieldDataMakers> = {};

/**
 * AddFieldData and RemoveFieldData undo each other, so each must make the other. Each file registers
 * its constructor here when it loads, and neither imports the other: operations/index.ts loads both.
 */
export function registerFieldDataMaker<K extends keyof FieldDataMakers>(which: K, make: FieldDataMakers[K]): void {
  makers[which] = make;
}

export function fieldDataMaker<K extends keyof FieldDataMakers>(which: K): FieldDataMakers[K] {
  const make = makers[which];
  if (!make) {
    const file = `src/operations/${which === 'add' ? 'add-field-data' : 'remove-field-data'}.ts`;
    throw new DsMigrateError('OPERATION_FAILED', `The reverse needs ${file} loaded: import the operations from src/operations/index.ts, not from their files.`, { file });
  }
  return make;
}
