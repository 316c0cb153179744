import { compareUtf8 } from '../datastore';
import type { IndexEntry } from './composite-indexes';

const HEADER = "# Written by `dsmigrate indexes` from the models' declared indexes; change the models, not this file.\n";

/**
 * gcloud's index.yaml (deployed with `gcloud datastore indexes create index.yaml`): a list `indexes` of
 * `kind`, `ancestor: yes|no` and `properties` (`name`, `direction: asc|desc`). Kinds are sorted and each
 * model's indexes keep their declared order, so the same models always give the same bytes (`--check`).
 */
export function indexYaml(entries: readonly IndexEntry[]): string {
  const sorted = sortIndexes(entries);
  if (sorted.length === 0) return `${HEADER}indexes: []\n`;
  const blocks = sorted.map((index) => {
    const lines = [`- kind: ${scalar(index.kind)}`, `  ancestor: ${index.ancestor ? 'yes' : 'no'}`, '  properties:'];
    for (const p of index.properties) lines.push(`  - name: ${scalar(p.name)}`, `    direction: ${p.direction}`);
    return lines.join('\n');
  });
  return `${HEADER}indexes:\n\n${blocks.join('\n\n')}\n`;
}

/** The file's order: by kind, each kind's indexes in declared order (the sort is stable). */
export function sortIndexes(entries: readonly IndexEntry[]): IndexEntry[] {
  return [...entries].sort((a, b) => compareUtf8(a.kind, b.kind));
}

const PLAIN = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
/** Words YAML 1.1 (gcloud's parser) reads as booleans or null when unquoted. */
const YAML_WORDS = /^(y|yes|n|no|true|false|on|off|null)$/i;

/** A kind or property name as a YAML scalar: plain when safe, else double-quoted (JSON's quoting is valid YAML). */
function scalar(name: string): string {
  return PLAIN.test(name) && !YAML_WORDS.test(name) ? name : JSON.stringify(name);
}
