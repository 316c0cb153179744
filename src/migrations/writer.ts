import { types } from 'node:util';
import { Double, GeoPoint, Key } from '../datastore';
import { DsMigrateError } from '../errors';
import type { Operation } from '../operations';

/** A value that JSON can hold: what a migration file's `state` is written from. */
export type JsonValue = null | boolean | number | string | readonly JsonValue[] | { readonly [key: string]: JsonValue };

/**
 * One entry of a written file's operations list: an operation written as `new <type>(...arguments)`
 * (inside `//` comments when `commentedOut`: shown for review, not run), or an operation taken from
 * another migration file by its place in that file's list, for operations that hold a function.
 */
export type WrittenOperation = { operation: Operation; comment?: string[]; commentedOut?: boolean } | { reference: { file: string; index: number }; comment?: string[] };

/** What a migration file holds, to be written as its source. */
export interface MigrationFile {
  /** Comment lines at the top of the file. */
  header?: string[];
  description?: string;
  /** Left out, the file depends on the previous file in its folder; `[]` says it depends on nothing. */
  dependencies?: string[];
  replaces?: string[];
  state?: JsonValue;
  operations: WrittenOperation[];
}

/** Prettier's printWidth in this repository (.prettierrc.json): the written file is formatted as prettier would format it. */
const WIDTH = 200;
const PACKAGE = 'datastore-migrate';

/**
 * The source of a migration file (Django's MigrationWriter): imports of exactly the classes it uses,
 * then `export default defineMigration({...})`, laid out as prettier lays it out so that the file
 * passes the repository's format check as written. An operation whose arguments cannot be written as
 * literals (a function, an object of some other class) is a BAD_INPUT error naming it: give it as a
 * `reference` instead.
 */
export function migrationSource(file: MigrationFile): string {
  const used = new Set<string>(['defineMigration']);
  const references = new Map<string, string>();
  const entries: Entry[] = [];
  if (file.description !== undefined) entries.push({ key: 'description', value: stringDoc(file.description) });
  if (file.dependencies !== undefined) entries.push({ key: 'dependencies', value: arrayDoc(file.dependencies.map(stringDoc)) });
  if (file.replaces !== undefined) entries.push({ key: 'replaces', value: arrayDoc(file.replaces.map(stringDoc)) });
  const items = file.operations.map((written): ListItem => {
    const comment = (written.comment ?? []).flatMap(commentLines);
    if ('reference' in written) return { comment, doc: atom(`${referenceName(written.reference.file, references)}.operations[${written.reference.index}]`) };
    const doc = operationDoc(written.operation, written.commentedOut ? new Set() : used);
    return { comment, doc, commentedOut: written.commentedOut };
  });
  const body = [`export default defineMigration({`, ...entries.map((entry) => `  ${renderEntry(entry, 2)},`), `  operations: ${renderList(items, 2, 'operations: '.length)},`];
  if (file.state !== undefined) body.push(`  ${renderEntry({ key: 'state', value: literal(file.state, { used, where: 'state' }) }, 2)},`);
  body.push('});');

  const names = [...used].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const from = ` from '${PACKAGE}';`;
  const oneLine = `import { ${names.join(', ')} }${from}`;
  const imports = [oneLine.length <= WIDTH ? oneLine : `import {\n${names.map((name) => `  ${name},\n`).join('')}}${from}`];
  for (const [specifier, name] of references) imports.push(`import ${name} from ${printString(specifier)};`);
  const header = (file.header ?? []).flatMap(commentLines);
  return [...(header.length > 0 ? [...header, ''] : []), ...imports, '', ...body, ''].join('\n');
}

/** Whether `migrationSource` can write the operation as literals; the error says which argument it cannot write. */
export function writableProblem(operation: Operation): DsMigrateError | undefined {
  try {
    operationDoc(operation, new Set());
    return undefined;
  } catch (error) {
    if (error instanceof DsMigrateError) return error;
    throw error;
  }
}

// --- Turning values into documents -------------------------------------------------------------

/** A piece of source: text that never breaks, or a bracketed list that breaks one item per line when it does not fit. */
type Doc = Atom | ObjectDoc | ArrayDoc | CallDoc;
interface Atom {
  type: 'atom';
  text: string;
  /** A string literal: prettier moves a long one to the next line after a long key. */
  string?: boolean;
  /** A number literal: prettier packs an array of only these several to a line. */
  number?: boolean;
}
interface Entry {
  key: string;
  value: Doc;
}
interface ObjectDoc {
  type: 'object';
  entries: Entry[];
}
interface ArrayDoc {
  type: 'array';
  items: Doc[];
}
interface CallDoc {
  type: 'call';
  /** What comes before the opening parenthesis, e.g. `new AddFieldData`. */
  callee: string;
  args: Doc[];
}

const atom = (text: string): Atom => ({ type: 'atom', text });
const stringDoc = (value: string): Atom => ({ type: 'atom', text: printString(value), string: true });
const arrayDoc = (items: Doc[]): ArrayDoc => ({ type: 'array', items });
const callDoc = (callee: string, args: Doc[]): CallDoc => ({ type: 'call', callee, args });

interface LiteralContext {
  /** The classes the literal uses, to import. */
  used: Set<string>;
  /** Where the value is, for messages: `arguments[2].default`. */
  where: string;
  operation?: Operation;
}

function operationDoc(operation: Operation, used: Set<string>): CallDoc {
  const args = operation.deconstruct();
  // Left out, a trailing undefined argument or an empty options object (every operation's options default to {}) reads the same.
  const omissible = (arg: unknown) => arg === undefined || (isPlainObject(arg) && Object.values(arg).every((v) => v === undefined));
  while (args.length > 0 && omissible(args[args.length - 1])) args.pop();
  used.add(operation.type);
  return callDoc(
    `new ${operation.type}`,
    args.map((arg, i) => literal(arg, { used, where: `argument ${i + 1}`, operation })),
  );
}

function literal(value: unknown, context: LiteralContext): Doc {
  const { used, where } = context;
  switch (typeof value) {
    case 'undefined':
      return atom('undefined');
    case 'boolean':
      return atom(String(value));
    case 'bigint':
      return atom(`${value}n`);
    case 'number':
      return { type: 'atom', text: printNumber(value), number: true };
    case 'string':
      return stringDoc(value);
    case 'object':
      break;
    default:
      throw unwritable(context, `is a ${typeof value}`);
  }
  if (value === null) return atom('null');
  if (Array.isArray(value)) return arrayDoc(value.map((item, i) => literal(item, { ...context, where: `${where}[${i}]` })));
  if (types.isDate(value)) {
    if (Number.isNaN(value.getTime())) throw unwritable(context, 'is an invalid Date');
    return callDoc('new Date', [stringDoc(value.toISOString())]);
  }
  if (Buffer.isBuffer(value)) return callDoc('Buffer.from', [stringDoc(value.toString('base64')), stringDoc('base64')]);
  if (value instanceof Key) {
    used.add('Key');
    return callDoc('Key.of', keyArguments(value));
  }
  if (value instanceof GeoPoint) {
    used.add('GeoPoint');
    return callDoc('new GeoPoint', [literal(value.latitude, context), literal(value.longitude, context)]);
  }
  if (value instanceof Double) {
    used.add('Double');
    return callDoc('new Double', [literal(value.value, context)]);
  }
  if (isPlainObject(value)) {
    const entries: Entry[] = [];
    for (const [key, item] of Object.entries(value)) {
      // `__proto__: x` in an object literal sets the prototype rather than a property.
      if (key === '__proto__') throw unwritable(context, 'has a property named __proto__');
      if (item !== undefined) entries.push({ key, value: literal(item, { ...context, where: `${where}.${key}` }) });
    }
    return { type: 'object', entries };
  }
  // A model given where a kind goes: its kind name makes the same operation (the model's fields only type-check arguments, which are already checked).
  const kind = (value as { kind?: unknown }).kind;
  if (typeof kind === 'string') return stringDoc(kind);
  const name = (Object.getPrototypeOf(value) as { constructor?: { name?: string } } | undefined)?.constructor?.name;
  throw unwritable(context, `is ${name ? `an instance of ${name}` : 'an object of another class'}`);
}

/** An object literal's object, from this realm or another (a test VM's files load in the main one). */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === null || (Object.getPrototypeOf(prototype) === null && (prototype as { constructor?: { name?: string } }).constructor?.name === 'Object');
}

function keyArguments(key: Key): Doc[] {
  const args: Doc[] = [];
  for (const element of key.path) {
    args.push(stringDoc(element.kind));
    if (element.name !== undefined) args.push(stringDoc(element.name));
    else if (element.id !== undefined) {
      // Key.of takes a number or bigint as an id; ids beyond 2^53 only as bigints.
      const id = BigInt(element.id);
      args.push(id <= BigInt(Number.MAX_SAFE_INTEGER) ? atom(element.id) : atom(`${element.id}n`));
    }
  }
  if (key.namespace) args.push({ type: 'object', entries: [{ key: 'namespace', value: stringDoc(key.namespace) }] });
  return args;
}

function unwritable(context: LiteralContext, what: string): DsMigrateError {
  const { operation, where } = context;
  if (!operation) return new DsMigrateError('BAD_INPUT', `A migration file's ${where} ${what}: it can hold only JSON values (objects, arrays, strings, numbers, booleans, null).`, { field: where });
  return new DsMigrateError(
    'BAD_INPUT',
    `${operation.type} (${operation.describe()}) cannot be written as literals: its ${where} ${what}. ` +
      "Take it from the migration file that defines it instead (a reference: `import m0003 from './0003_name.js'` ... `m0003.operations[i]`), or write the file by hand.",
    { operation: operation.type, argument: where },
  );
}

/** How `String(n)` differs from prettier's number literals: no `+` in an exponent, and a sign on zero. */
function printNumber(value: number): string {
  if (Object.is(value, -0)) return '-0';
  return String(value).replace('e+', 'e');
}

/** A string literal as prettier prints it with singleQuote: single quotes unless the text holds more of them than double quotes. */
function printString(value: string): string {
  const singles = value.split("'").length - 1;
  const doubles = value.split('"').length - 1;
  const quote = singles > doubles ? '"' : "'";
  const escaped = JSON.stringify(value)
    .slice(1, -1)
    .replace(/\\(.)|(')/g, (match, escapedChar: string | undefined, single: string | undefined) => {
      if (single) return quote === "'" ? "\\'" : "'";
      if (escapedChar === '"') return quote === '"' ? '\\"' : '"';
      return match;
    });
  return `${quote}${escaped}${quote}`;
}

/** An identifier (ES5's, as prettier tells whether a key needs quotes) is written bare; any other key is quoted. */
function printKey(key: string): string {
  return /^[\p{ID_Start}$_][\p{ID_Continue}$\u200c\u200d]*$/u.test(key) ? key : printString(key);
}

function commentLines(text: string): string[] {
  return text.split('\n').map((line) => (line.trimEnd() ? `// ${line.trimEnd()}` : '//'));
}

/**
 * `m0003` for `./0003_backfill.js`, made unique among a file's references. The specifier names the file
 * as it runs once compiled (.ts as .js): an ES module app type-checked with `module: nodenext` requires
 * the extension, and TypeScript and jiti both resolve it to the source.
 */
function referenceName(file: string, references: Map<string, string>): string {
  const specifier = file
    .replace(/\.ts$/, '.js')
    .replace(/\.mts$/, '.mjs')
    .replace(/\.cts$/, '.cjs');
  const relative = specifier.startsWith('.') || specifier.startsWith('/') ? specifier : `./${specifier}`;
  const known = references.get(relative);
  if (known) return known;
  const base = relative.split('/').pop()!;
  const taken = new Set(references.values());
  const short = `m${/^\d+/.exec(base)?.[0] ?? base.replace(/[^A-Za-z0-9_$]/g, '_')}`;
  let name = short;
  for (let n = 2; taken.has(name); n++) name = `${short}_${n}`;
  references.set(relative, name);
  return name;
}

// --- Laying documents out as prettier does -------------------------------------------------------

const pad = (n: number): string => ' '.repeat(n);

function flat(doc: Doc): string {
  switch (doc.type) {
    case 'atom':
      return doc.text;
    case 'object':
      return doc.entries.length === 0 ? '{}' : `{ ${doc.entries.map((e) => `${printKey(e.key)}: ${flat(e.value)}`).join(', ')} }`;
    case 'array':
      return `[${doc.items.map(flat).join(', ')}]`;
    case 'call':
      return `${doc.callee}(${doc.args.map(flat).join(', ')})`;
  }
}

/**
 * The doc starting at `column` on a line indented by `indent`, followed on that line by `tail`
 * characters (a comma, a parenthesis): on one line when it fits in the width, else broken.
 */
function render(doc: Doc, indent: number, column: number, tail: number): string {
  const oneLine = flat(doc);
  if (doc.type === 'atom') return oneLine;
  const fits = !breaks(doc) && column + oneLine.length + tail <= WIDTH;
  switch (doc.type) {
    case 'object':
      return fits || doc.entries.length === 0 ? oneLine : broken(doc, indent);
    case 'array':
      if (doc.items.length === 0 || fits) return oneLine;
      return concise(doc) ? packed(doc, indent) : broken(doc, indent);
    case 'call': {
      if (fits) return oneLine;
      const last = doc.args.at(-1);
      const before = doc.args.slice(0, -1);
      const penultimate = before.at(-1);
      // Prettier keeps the arguments on the call's line and breaks only a last object or array ("hugs" it) when that line fits.
      const huggable = last !== undefined && (last.type === 'object' || last.type === 'array') && !isEmpty(last) && !concise(last) && penultimate?.type !== last.type && !before.some(breaks);
      const prefix = `${doc.callee}(${before.map((arg) => `${flat(arg)}, `).join('')}`;
      if (huggable && column + prefix.length + 1 <= WIDTH) return `${prefix}${broken(last, indent)})`;
      return `${doc.callee}(\n${doc.args.map((arg) => `${pad(indent + 2)}${render(arg, indent + 2, indent + 2, 1)},\n`).join('')}${pad(indent)})`;
    }
  }
}

function isEmpty(doc: ObjectDoc | ArrayDoc): boolean {
  return doc.type === 'object' ? doc.entries.length === 0 : doc.items.length === 0;
}

/** Holds an array that breaks whether it fits or not, so neither it nor anything around it can be on one line. */
function breaks(doc: Doc): boolean {
  switch (doc.type) {
    case 'atom':
      return false;
    case 'object':
      return doc.entries.some((entry) => breaks(entry.value));
    case 'array':
      return alwaysBreaks(doc) || doc.items.some(breaks);
    case 'call':
      return doc.args.some(breaks);
  }
}

/** Prettier breaks an array of two or more objects (or arrays) that each have more than one entry, fitting or not. */
function alwaysBreaks(doc: ArrayDoc): boolean {
  if (doc.items.length < 2) return false;
  const first = doc.items[0].type;
  return (
    (first === 'object' || first === 'array') && doc.items.every((item) => item.type === first && (item.type === 'object' ? item.entries.length > 1 : item.type === 'array' && item.items.length > 1))
  );
}

function concise(doc: Doc): boolean {
  return doc.type === 'array' && doc.items.length > 1 && doc.items.every((item) => item.type === 'atom' && item.number);
}

function broken(doc: ObjectDoc | ArrayDoc, indent: number): string {
  const inner = pad(indent + 2);
  if (doc.type === 'object') return `{\n${doc.entries.map((entry) => `${inner}${renderEntry(entry, indent + 2)},\n`).join('')}${pad(indent)}}`;
  return `[\n${doc.items.map((item) => `${inner}${render(item, indent + 2, indent + 2, 1)},\n`).join('')}${pad(indent)}]`;
}

/** An array of numbers broken as prettier breaks it: as many to a line as fit. */
function packed(doc: ArrayDoc, indent: number): string {
  const lines: string[] = [];
  let line = '';
  for (const item of doc.items) {
    const text = `${flat(item)},`;
    if (line && indent + 2 + line.length + 1 + text.length <= WIDTH) line += ` ${text}`;
    else {
      if (line) lines.push(line);
      line = text;
    }
  }
  lines.push(line);
  return `[\n${lines.map((l) => `${pad(indent + 2)}${l}\n`).join('')}${pad(indent)}]`;
}

/** `key: value` at the start of a line indented by `indent`, followed by a comma. */
function renderEntry(entry: Entry, indent: number): string {
  const key = printKey(entry.key);
  const column = indent + key.length + 2;
  // A string too long for the key's line goes on the next line, unless the key is shorter than 5 (prettier's "short key").
  if (entry.value.type === 'atom' && entry.value.string && key.length >= 5 && column + entry.value.text.length + 1 > WIDTH) return `${key}:\n${pad(indent + 2)}${entry.value.text}`;
  return `${key}: ${render(entry.value, indent, column, 1)}`;
}

interface ListItem {
  doc: Doc;
  comment: string[];
  commentedOut?: boolean;
}

/** The operations list: one line when it fits and has no comments, else one operation (with its comments above it) per line. */
function renderList(items: ListItem[], indent: number, keyWidth: number): string {
  const hasComments = items.some((item) => item.comment.length > 0 || item.commentedOut);
  if (!hasComments) return render(arrayDoc(items.map((item) => item.doc)), indent, indent + keyWidth, 1);
  const inner = pad(indent + 2);
  const lines: string[] = [];
  for (const item of items) {
    for (const line of item.comment) lines.push(`${inner}${line}`);
    const source = `${render(item.doc, indent + 2, indent + 2, 1)},`;
    // Shown as written, each line under the first kept at its depth below it.
    if (item.commentedOut) for (const line of source.split('\n')) lines.push(`${inner}// ${line.startsWith(inner) ? line.slice(inner.length) : line}`);
    else lines.push(`${inner}${source}`);
  }
  return `[\n${lines.join('\n')}\n${pad(indent)}]`;
}
