import { DsMigrateError } from '../errors';
import type { UniqueFields } from './unique';

interface Named {
  readonly kind: string;
}

const models = new Map<string, Named>();

/** Remembers the latest model of each kind, so that code holding only a kind name can find it. */
export function registerModel<M extends Named>(model: M): M {
  models.set(model.kind, model);
  return model;
}

export function modelFor<M extends Named = Named>(kind: string): M {
  const model = models.get(kind);
  if (!model) {
    const known = [...models.keys()].sort();
    throw new DsMigrateError('UNKNOWN_KIND', `No model is defined for kind "${kind}". Known kinds: ${known.length ? known.join(', ') : 'none'}.`, { kind });
  }
  return model as M;
}

/** The unique fields of the kind's registered model, if it has any (the operations keep their markers). */
export function uniqueFieldsOf(kind: string): UniqueFields | undefined {
  const model = models.get(kind) as { unique?: UniqueFields } | undefined;
  return model?.unique;
}

export function hasModel(kind: string): boolean {
  return models.has(kind);
}

/** Every registered model, the latest of each kind, in the order their kinds were first defined. */
export function registeredModels(): Named[] {
  return [...models.values()];
}
