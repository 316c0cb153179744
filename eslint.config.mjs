import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { defineConfig } from 'eslint/config';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { importX } from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import prettier from 'eslint-config-prettier';
import { localPlugin } from './eslint.config.cycles.mjs';

const root = import.meta.dirname;

/**
 * The folders of src/, lowest first. A folder may import its own layer and lower ones, and another
 * folder only through an index.ts (its own or a sub-folder's, as executors/cloud-tasks/index.ts);
 * errors.ts is below them all, and src/index.ts (the package surface) and src/api.ts (its functions) above them all.
 */
const LAYERS = ['datastore', 'control', 'model', 'sharding', 'operations', 'migrations', 'executors', 'dynamic', 'worker', 'cli'];

/** The index.ts files of a folder and its sub-folders, relative to it: the only ways in from outside. */
function entryPoints(folder) {
  const dir = path.join(root, 'src', folder);
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true })
    .map(String)
    .filter((file) => path.basename(file) === 'index.ts')
    .map((file) => `./${file.split(path.sep).join('/')}`);
}

/** cli/ has no index.ts, as it is the dsmigrate bin (cli/main.ts): the package takes only defineConfig from it. */
const PUBLIC_FILES = { cli: ['./config.ts'] };

const throughIndex = (folder) => `Import src/${folder}/ through its index.ts (add the name there), not its internals.`;

const layerZones = [
  ...LAYERS.flatMap((layer, rank) =>
    LAYERS.flatMap((other, otherRank) => {
      if (other === layer) return [];
      const zone = { target: `./src/${layer}`, from: `./src/${other}` };
      if (otherRank > rank) return [{ ...zone, message: `src/${layer}/ is below src/${other}/ in the layers (LAYERS in eslint.config.mjs): move the shared code down, or pass it in.` }];
      return [{ ...zone, except: entryPoints(other), message: throughIndex(other) }];
    }),
  ),
  ...LAYERS.map((folder) => ({
    target: ['./src/index.ts', './src/api.ts'],
    from: `./src/${folder}`,
    except: [...entryPoints(folder), ...(PUBLIC_FILES[folder] ?? [])],
    message: throughIndex(folder),
  })),
  {
    target: ['./src/*/**', './src/errors.ts'],
    from: ['./src/index.ts', './src/api.ts'],
    message: 'src/index.ts and src/api.ts are the top layer, the package surface: import the folder that defines the name.',
  },
  { target: './src/errors.ts', from: LAYERS.map((folder) => `./src/${folder}`), message: 'src/errors.ts is the bottom layer: it imports no folder of src/.' },
  // The package ships emulator/ (built beside src/) for `dsmigrate emulator` alone: the library must
  // not depend on it, and the command enters it only through emulator/index.ts.
  {
    target: ['./src/*.ts', ...LAYERS.filter((layer) => layer !== 'cli').map((layer) => `./src/${layer}`)],
    from: './emulator',
    message: 'Only src/cli/ may import emulator/ (for `dsmigrate emulator`): the library does not depend on the emulators.',
  },
  { target: './src/cli', from: './emulator', except: ['./index.ts'], message: 'Import emulator/ through emulator/index.ts (add the name there), not its internals.' },
];

export default defineConfig(
  { ignores: ['dist/', 'coverage/', 'node_modules/'] },
  {
    files: ['**/*.ts'],
    extends: [js.configs.recommended, tseslint.configs.recommended],
    plugins: { 'import-x': importX, local: localPlugin },
    settings: {
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: path.join(root, 'tsconfig.json') })],
    },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', ignoreRestSiblings: true }],
      'local/no-import-cycle': 'error',
      // A variable declared before the closure that clears it and assigned after (emulator/cloud-tasks/http-send.ts's timer) cannot be const.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
    },
  },
  {
    files: ['src/**/*.ts'],
    rules: {
      'import-x/no-restricted-paths': ['error', { basePath: root, zones: layerZones }],
    },
  },
  prettier,
);
