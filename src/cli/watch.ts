import { followRun, type MigrateSummary } from '../migrations';
import type { CliContext } from './context';
import { jsonLine, type Reporter } from './output';

/**
 * Follows a run to its end with the reporter's bars (src/migrations/follow.ts). Ctrl-C detaches: the
 * run goes on wherever it runs, and the message says how to attach again. Undefined when detached.
 */
export async function watchRun(ctx: CliContext, runId: string, reporter: Reporter, json: boolean): Promise<MigrateSummary | undefined> {
  const detach = new AbortController();
  const onSigint = () => detach.abort();
  process.once('SIGINT', onSigint);
  try {
    const summary = await followRun({ store: ctx.store, namespace: ctx.config.controlNamespace, runId, onEvent: (e) => reporter.event(e), signal: detach.signal });
    reporter.close();
    if (!detach.signal.aborted) return summary;
    const again = 'dsmigrate status --watch';
    if (json) jsonLine({ event: 'detached', run: runId, attach: again });
    else process.stderr.write(`Detached from run ${runId}; it goes on. Attach again with \`${again}\`.\n`);
    return undefined;
  } finally {
    process.removeListener('SIGINT', onSigint);
    reporter.close();
  }
}
