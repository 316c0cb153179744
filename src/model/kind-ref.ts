import { DsMigrateError } from '../errors';

/** Wherever a kind is taken, a kind name or a model made by defineModel will do. */
export type KindRef = string | { readonly kind: string };

const KIND_NAME = /^[^\s](.{0,1498}[^\s])?$/s;

export function kindOf(ref: KindRef): string {
  const kind = typeof ref === 'string' ? ref : ref?.kind;
  if (typeof kind !== 'string' || !KIND_NAME.test(kind) || /^__.*__$/.test(kind)) {
    throw new DsMigrateError('BAD_INPUT', `Invalid kind ${JSON.stringify(kind)}: a kind is a non-empty name, not reserved (__name__), without surrounding spaces.`, {
      kind: typeof kind === 'string' ? kind : undefined,
    });
  }
  return kind;
}
