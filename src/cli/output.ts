import { MultiBar, Presets, type SingleBar } from 'cli-progress';
import type { OperationProgress, RunEvent } from '../migrations';

export type OutputMode = 'tty' | 'plain' | 'json';

export interface Reporter {
  event(event: RunEvent): void;
  close(): void;
}

export function outputMode(json: boolean, stream: NodeJS.WriteStream = process.stderr): OutputMode {
  return json ? 'json' : stream.isTTY ? 'tty' : 'plain';
}

/** Machine output: one JSON object a line on stdout. */
export function jsonLine(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, bigints)}\n`);
}

/** Integers beyond 2^53 read as bigints (src/datastore/values.ts), which JSON.stringify refuses: written as their digits. */
function bigints(_name: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

export function createReporter(mode: OutputMode): Reporter {
  if (mode === 'json') return { event: (e) => jsonLine({ event: e.type, ...withoutType(e) }), close: () => undefined };
  return mode === 'tty' ? new BarReporter() : new LineReporter();
}

function withoutType(e: RunEvent): Record<string, unknown> {
  const { type: _type, ...rest } = e;
  return rest;
}

export function formatCounts(p: OperationProgress): string {
  const parts = [`scanned ${p.scanned}`, `changed ${p.changed}`];
  if (p.deleted) parts.push(`deleted ${p.deleted}`);
  if (p.skipped) parts.push(`skipped ${p.skipped}`);
  if (p.failed) parts.push(`failed ${p.failed}`);
  return parts.join(', ');
}

/** The write limit in force, for a progress line: empty when the operation has none. */
export function formatLimit(p: OperationProgress): string {
  return p.rateLimit === undefined ? '' : ` (limit ${Math.round(p.rateLimit)}/s)`;
}

/** Rate over the operation so far, in entities per second. */
class Rate {
  private readonly started = Date.now();
  perSecond(scanned: number): number {
    const seconds = (Date.now() - this.started) / 1000;
    return seconds > 0 ? Math.round(scanned / seconds) : 0;
  }
}

/** What a run does with the migrations it lists. */
function planVerb(e: Extract<RunEvent, { type: 'plan' }>): string {
  if (e.purpose === 'verify') return 'Verifying';
  const verb = e.direction === 'forward' ? 'Applying' : 'Backing out';
  return e.purpose === 'dry-run' ? `Dry-running (${verb.toLowerCase()})` : verb;
}

/** For logs and CI: a line per step, and a progress line at most every five seconds. */
class LineReporter implements Reporter {
  private rate = new Rate();
  private lastLine = 0;

  constructor(private readonly write: (line: string) => void = (line) => process.stderr.write(`${line}\n`)) {}

  event(e: RunEvent): void {
    const out = this.write;
    switch (e.type) {
      case 'plan':
        out(
          e.migrations.length
            ? `${planVerb(e)} ${e.migrations.length} migration(s): ${e.migrations.join(', ')}`
            : `No migrations to ${e.purpose === 'verify' ? 'verify' : e.direction === 'forward' ? 'apply' : 'back out'}.`,
        );
        break;
      case 'migration-start':
        out(`[${e.index + 1}/${e.total}] ${e.migration}${e.resumed ? ' (resuming)' : ''}`);
        break;
      case 'operation-start':
        this.rate = new Rate();
        out(`  operation ${e.operation + 1}/${e.operations}: ${e.description}`);
        break;
      case 'progress':
        if (Date.now() - this.lastLine > 5000) {
          this.lastLine = Date.now();
          out(`    ${formatCounts(e.progress)}; shards ${e.progress.shardsDone}/${e.progress.shardsTotal}; ${this.rate.perSecond(e.progress.scanned)} entities/s${formatLimit(e.progress)}`);
        }
        break;
      case 'operation-done':
        out(`    done: ${formatCounts(e.result)} (${this.rate.perSecond(e.result.scanned)} entities/s)`);
        e.result.warnings.forEach((w) => out(`    warning: ${w}`));
        break;
      case 'migration-done':
        out(`  ${e.state} ${e.migration}`);
        break;
      case 'migration-failed':
        // The error itself is printed once, by the command, with how to go on.
        out(`  FAILED ${e.migration}`);
        break;
      case 'waiting':
        out(`    waiting (attempt ${e.attempts}): ${e.reason}`);
        break;
      case 'closing':
        out(`    waiting: ${e.reason}`);
        break;
      case 'log':
        out(`    ${e.message}`);
        break;
      case 'dry-run':
        out(`[dry run] ${e.migration} operation ${e.operation + 1}: ${e.description}: ${e.result.scanned} scanned, ${e.result.changed + e.result.deleted} would change`);
        for (const s of e.result.samples ?? []) out(`    ${s.key}\n      before: ${JSON.stringify(s.before, bigints)}\n      after:  ${JSON.stringify(s.after, bigints)}`);
        e.result.warnings.forEach((w) => out(`    warning: ${w}`));
        break;
    }
  }
  close(): void {}
}

/** For a terminal: a bar per operation with entities/s and an ETA where the total is known. */
class BarReporter implements Reporter {
  private readonly bars = new MultiBar(
    { format: ' {label} |{bar}| {value}/{total} entities | {speed}/s{limit} | ETA {eta_formatted}', hideCursor: true, clearOnComplete: false, etaBuffer: 50, stream: process.stderr },
    Presets.shades_classic,
  );
  private bar?: SingleBar;
  private rate = new Rate();
  private readonly lines = new LineReporter((line) => this.bars.log(`${line}\n`));

  event(e: RunEvent): void {
    switch (e.type) {
      case 'operation-start':
        this.rate = new Rate();
        this.bar = this.bars.create(1, 0, { label: `${e.migration} ${e.operation + 1}/${e.operations}`, speed: 0, limit: '' });
        this.bars.log(`${e.migration}: ${e.description}\n`);
        break;
      case 'progress': {
        const p = e.progress;
        this.bar?.setTotal(Math.max(p.estimatedTotal ?? 0, p.scanned, 1));
        this.bar?.update(p.scanned, { speed: this.rate.perSecond(p.scanned), limit: formatLimit(p) });
        break;
      }
      case 'operation-done':
        this.bar?.setTotal(Math.max(e.result.scanned, 1));
        this.bar?.update(e.result.scanned, { speed: this.rate.perSecond(e.result.scanned) });
        this.bar?.stop();
        break;
      default:
        this.lines.event(e);
    }
  }
  close(): void {
    this.bars.stop();
  }
}

/** A plain text table with padded columns. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (c ?? '').padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
