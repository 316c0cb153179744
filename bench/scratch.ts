import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * Makes every temporary directory of this process and its children (apps, packs, timings, emulator data)
 * inside one, removed when the process exits however it exits: os.tmpdir() reads TMPDIR, which child
 * processes inherit.
 */
export function scratchUntilExit(): void {
  const root = mkdtempSync(path.join(tmpdir(), 'dsm-bench-'));
  process.env.TMPDIR = root;
  process.on('exit', () => rmSync(root, { recursive: true, force: true }));
}
