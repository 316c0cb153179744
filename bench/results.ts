import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const RESULTS = path.join(__dirname, 'results.md');

/**
 * Rewrites bench/results.md with this section (by name: `cold-1000000`, `soak`), keeping the other sections
 * as they were, in their order, under `header` (the header as it was, when not given); prints the section.
 */
export function writeSection(name: string, body: string, header?: string): void {
  const previous = existsSync(RESULTS) ? readFileSync(RESULTS, 'utf8') : '';
  const kept = /^# Benchmarks\n\n([\s\S]*?)\n\n<!-- /.exec(previous)?.[1] ?? '';
  const block = `<!-- ${name} -->\n${body}\n\n_${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC_\n<!-- /${name} -->`;
  const blocks = [...previous.matchAll(/<!-- (\S+) -->[\s\S]*?<!-- \/\1 -->/g)].map((m) => (m[1] === name ? block : m[0]));
  if (!blocks.includes(block)) blocks.push(block);
  writeFileSync(RESULTS, `# Benchmarks\n\n${header ?? kept}\n\n${blocks.join('\n\n')}\n`);
  process.stdout.write(`\n${body}\n\n(written to ${path.relative(process.cwd(), RESULTS)})\n`);
}
