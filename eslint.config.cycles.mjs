import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import tseslint from 'typescript-eslint';

/**
 * `local/no-import-cycle`: no module may reach itself through its relative imports, `import type` included.
 * import-x/no-cycle skips type-only imports, so it missed the store/transaction cycle (src/datastore/):
 * harmless at run time, but the smell STYLE calls out, a module made public only so that its sibling can
 * call it back. Only relative imports can close a cycle here: src/ imports no package of its own.
 */

/** Absolute path of a module → the absolute paths it imports; read once per lint run. */
const importsOf = new Map();

function resolveRelative(fromFile, source) {
  if (!source.startsWith('.')) return undefined;
  const base = path.resolve(path.dirname(fromFile), source);
  return [`${base}.ts`, path.join(base, 'index.ts'), base].find((file) => file.endsWith('.ts') && existsSync(file));
}

/** The sources of a program's static imports and re-exports, with the node that names each. */
function importSources(program) {
  return program.body.filter((node) => (node.type === 'ImportDeclaration' || node.type === 'ExportAllDeclaration' || node.type === 'ExportNamedDeclaration') && node.source).map((node) => node.source);
}

function importsOfFile(file) {
  let found = importsOf.get(file);
  if (!found) {
    const { ast } = tseslint.parser.parseForESLint(readFileSync(file, 'utf8'), { sourceType: 'module', filePath: file });
    found = importSources(ast).flatMap((source) => resolveRelative(file, source.value) ?? []);
    importsOf.set(file, found);
  }
  return found;
}

/** The shortest chain of imports from `start` back to `target`, or undefined. */
function routeBack(start, target) {
  const cameFrom = new Map([[start, undefined]]);
  const queue = [start];
  while (queue.length > 0) {
    const file = queue.shift();
    for (const next of importsOfFile(file)) {
      if (next === target) {
        const route = [file];
        for (let at = cameFrom.get(file); at !== undefined; at = cameFrom.get(at)) route.unshift(at);
        return route;
      }
      if (!cameFrom.has(next)) {
        cameFrom.set(next, file);
        queue.push(next);
      }
    }
  }
  return undefined;
}

const noImportCycle = {
  meta: {
    type: 'problem',
    docs: { description: 'Forbid import cycles between modules, type-only imports included.' },
    messages: { cycle: 'Import cycle: {{route}}. Pass a small interface, or move what both need into a module that imports neither.' },
    schema: [],
  },
  create(context) {
    const file = context.physicalFilename;
    const root = context.cwd;
    return {
      Program(program) {
        for (const source of importSources(program)) {
          const imported = resolveRelative(file, source.value);
          if (!imported || imported === file) continue;
          const route = routeBack(imported, file);
          if (route) context.report({ node: source, messageId: 'cycle', data: { route: [file, ...route, file].map((f) => path.relative(root, f)).join(' -> ') } });
        }
      },
    };
  },
};

export const localPlugin = { rules: { 'no-import-cycle': noImportCycle } };
