import type { google } from '@google-cloud/datastore/build/protos/protos';
import { DsMigrateError } from '../errors';

export type KeyProto = google.datastore.v1.IKey;

/** One step of a key's path. An integer id is kept as a decimal string so that ids beyond 2^53 survive. */
export interface PathElement {
  readonly kind: string;
  readonly id?: string;
  readonly name?: string;
}

export type IdOrName = string | number | bigint;

const INT64_MAX = 9223372036854775807n;
/** Datastore's partition rule: '' (the default namespace) or 1–100 of these characters. */
const NAMESPACE_NAME = /^[A-Za-z0-9._-]{0,100}$/;

/**
 * An immutable Datastore key: namespace plus full ancestor path. Projects and databases belong to the
 * connection, not the key, so keys move freely between namespaces and kinds when data is copied.
 */
export class Key {
  readonly namespace: string;
  readonly path: readonly PathElement[];
  /** toString, made once. A private field, so that keys still compare equal field by field (a WeakMap beside them cost a batch more than the strings). */
  #text: string | undefined = undefined;

  constructor(path: readonly PathElement[], namespace = '') {
    if (path.length === 0) throw new DsMigrateError('BAD_INPUT', 'A key needs at least one path element.');
    // A frozen path of frozen elements (another key's, or one read from the wire) cannot change under this key: kept, not copied.
    let kept = Object.isFrozen(path);
    for (let i = 0; i < path.length; i++) {
      const element = path[i];
      if (!element.kind) throw new DsMigrateError('BAD_INPUT', 'A key path element has an empty kind.');
      if (element.id !== undefined && element.name !== undefined) {
        throw new DsMigrateError('BAD_INPUT', `Key element ${element.kind} has both an id and a name.`, { kind: element.kind });
      }
      if (i < path.length - 1 && element.id === undefined && element.name === undefined) {
        throw new DsMigrateError('BAD_INPUT', `Ancestor ${element.kind} in a key has neither id nor name.`, { kind: element.kind });
      }
      kept &&= Object.isFrozen(element);
    }
    this.path = kept ? path : Object.freeze(path.map((e) => (Object.isFrozen(e) ? e : pathElement(e.kind, e.id, e.name))));
    this.namespace = namespace;
  }

  /**
   * `Key.of('Parent', 'p1', 'Child', 7, {namespace: 'tenant'})`: pairs of kind and identifier. A number or
   * bigint is an id; a string is a name, even a string of digits, as in @google-cloud/datastore's
   * `key(['Company', '123'])`, so that code and keys written with that client mean the same here.
   */
  static of(...args: [...(string | IdOrName)[], { namespace?: string }] | (string | IdOrName)[]): Key {
    const last = args[args.length - 1];
    const options = typeof last === 'object' && last !== null && typeof last !== 'bigint' ? (last as { namespace?: string }) : undefined;
    const parts = (options ? args.slice(0, -1) : args) as IdOrName[];
    const path: PathElement[] = [];
    for (let i = 0; i < parts.length; i += 2) {
      const kind = String(parts[i]);
      const ident = parts[i + 1];
      path.push(ident === undefined ? { kind } : { kind, ...identifier(ident) });
    }
    return new Key(path, options?.namespace ?? '');
  }

  /**
   * Why a namespace name would be refused by Datastore, or undefined when it is valid. Checked before any
   * RPC, so that a bad name in an option or flag fails with that option's name rather than an RPC error.
   */
  static namespaceProblem(namespace: unknown): string | undefined {
    if (typeof namespace !== 'string') return `${JSON.stringify(namespace)} is not a string`;
    if (namespace.length > 100) return `${JSON.stringify(namespace.slice(0, 20) + '…')} is ${namespace.length} characters long, and a namespace has at most 100`;
    if (!NAMESPACE_NAME.test(namespace)) return `${JSON.stringify(namespace)} holds characters other than letters, digits, '.', '-' and '_'`;
    if (/^__.*__$/.test(namespace)) return `${JSON.stringify(namespace)} is reserved (Datastore keeps names like __name__ for itself)`;
    return undefined;
  }

  get kind(): string {
    return this.leaf.kind;
  }
  get id(): string | undefined {
    return this.leaf.id;
  }
  get name(): string | undefined {
    return this.leaf.name;
  }
  get leaf(): PathElement {
    return this.path[this.path.length - 1];
  }
  get isComplete(): boolean {
    return this.leaf.id !== undefined || this.leaf.name !== undefined;
  }
  get parent(): Key | undefined {
    return this.path.length > 1 ? new Key(this.path.slice(0, -1), this.namespace) : undefined;
  }
  /** The root entity: the entity group, which is what the classic backend's 25-group limit counts. */
  get root(): Key {
    return this.path.length === 1 ? this : new Key(this.path.slice(0, 1), this.namespace);
  }

  withNamespace(namespace: string): Key {
    return new Key(this.path, namespace);
  }
  /** The same key with its leaf kind replaced (ancestors untouched), as copies of a kind need. */
  withKind(kind: string): Key {
    return new Key([...this.path.slice(0, -1), { ...this.leaf, kind }], this.namespace);
  }
  child(kind: string, ident?: IdOrName): Key {
    return new Key([...this.path, ident === undefined ? { kind } : { kind, ...identifier(ident) }], this.namespace);
  }

  equals(other: Key): boolean {
    return Key.compare(this, other) === 0 && this.namespace === other.namespace;
  }

  /** A stable, readable and unique string, used in messages and as a map key (made once: batches look keys up by it often). */
  toString(): string {
    if (this.#text === undefined) {
      // Most keys are of one element: no array of parts then.
      const path = this.path.length === 1 ? elementText(this.path[0]) : this.path.map(elementText).join('/');
      this.#text = this.namespace ? `[${this.namespace}]${path}` : path;
    }
    return this.#text;
  }

  toProto(projectId: string, databaseId = ''): KeyProto {
    return {
      partitionId: { projectId, databaseId, namespaceId: this.namespace },
      path: this.path.map((e) => (e.id !== undefined ? { kind: e.kind, id: e.id } : e.name !== undefined ? { kind: e.kind, name: e.name } : { kind: e.kind })),
    };
  }

  static fromProto(proto: KeyProto): Key {
    const path = (proto.path ?? []).map((e): PathElement => {
      const kind = e.kind ?? '';
      if (e.name !== undefined && e.name !== null && e.name !== '') return { kind, name: e.name };
      if (e.id !== undefined && e.id !== null && String(e.id) !== '0') return { kind, id: String(e.id) };
      return { kind };
    });
    return new Key(path, proto.partitionId?.namespaceId ?? '');
  }

  /**
   * Datastore's order within one namespace: element by element, kind first, then integer ids before
   * names, ids numerically and names by UTF-8 bytes; an ancestor sorts before its descendants.
   */
  static compare(a: Key, b: Key): number {
    const n = Math.min(a.path.length, b.path.length);
    for (let i = 0; i < n; i++) {
      const c = compareElements(a.path[i], b.path[i]);
      if (c !== 0) return c;
    }
    return a.path.length - b.path.length;
  }
}

function elementText(e: PathElement): string {
  return `${e.kind}:${e.id ?? (e.name !== undefined ? JSON.stringify(e.name) : '?')}`;
}

/** A frozen path element. Literals of one shape: a spread copy costs each element a hidden class of its own (3× the memory). */
export function pathElement(kind: string, id?: string, name?: string): PathElement {
  return Object.freeze(name !== undefined ? { kind, name } : id !== undefined ? { kind, id } : { kind });
}

function identifier(ident: IdOrName): { id: string } | { name: string } {
  if (typeof ident === 'number') {
    if (!Number.isInteger(ident) || ident <= 0) throw new DsMigrateError('BAD_INPUT', `Key id ${ident} is not a positive whole number.`);
    // A number past 2^53 has already lost digits: only a bigint carries such an id exactly.
    if (!Number.isSafeInteger(ident)) {
      throw new DsMigrateError(
        'BAD_INPUT',
        `Key id ${ident} is beyond 2^53 and may have lost digits: pass it as a bigint, e.g. BigInt('5629499534213120') or 5629499534213120n (a string is a key name, never an id).`,
      );
    }
    return { id: String(ident) };
  }
  if (typeof ident === 'bigint') {
    if (ident <= 0n || ident > INT64_MAX) throw new DsMigrateError('BAD_INPUT', `Key id ${ident}n is outside 1..2^63-1: ids are positive 64-bit integers.`);
    return { id: ident.toString() };
  }
  if (typeof ident !== 'string' || ident === '' || /^__.*__$/.test(ident)) {
    throw new DsMigrateError('BAD_INPUT', `Key name ${JSON.stringify(ident)} is not a name: a name is a non-empty string, not reserved (__name__); an id is a number or a bigint.`);
  }
  return { name: ident };
}

/** Compares by Unicode code point, which is the same order as comparing UTF-8 bytes. */
export function compareUtf8(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x - y;
    if (x > 0xffff) i++;
  }
  return a.length - b.length;
}

function compareIds(a: string, b: string): number {
  return a.length !== b.length ? a.length - b.length : a < b ? -1 : a > b ? 1 : 0;
}

function compareElements(a: PathElement, b: PathElement): number {
  const kinds = compareUtf8(a.kind, b.kind);
  if (kinds !== 0) return kinds;
  if (a.id !== undefined && b.id !== undefined) return compareIds(a.id, b.id);
  if (a.name !== undefined && b.name !== undefined) return compareUtf8(a.name, b.name);
  // Incomplete < id < name.
  const rank = (e: PathElement) => (e.name !== undefined ? 2 : e.id !== undefined ? 1 : 0);
  return rank(a) - rank(b);
}
