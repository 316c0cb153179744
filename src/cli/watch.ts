import { followRun, type MigrateSummary } from '../migrations';
import type { CliContext } from './context';
import type { Reporter } from './output';

/**
 * Follows a run to its end with the reporter's bars (src/migrations/follow.ts). Ctrl-C detaches: the
 * run goes on wherever it runs, and the message says how to attach again. Undefined when detached.
 */
export async function watchRun(ctx: CliContext, runId: string, reporter: Reporter, say: (line: string) => void): Promise<MigrateSummary | undefined> {
  const detach = new AbortController();
  const onSigint = () => detach.abort();
  process.once('SIGINT', onSigint);
  try {
    const summary = await followRun({ store: ctx.store, namespace: ctx.config.controlNamespace, runId, onEvent: (e) => reporter.event(e), signal: detach.signal });
    reporter.close();
    if (!detach.signal.aborted) return summary;
    say(`Detached from run ${runId}; it goes on. Attach again with \`dsmigrate status --watch\`.`);
    return undefined;
  } finally {
    process.removeListener('SIGINT', onSigint);
    reporter.close();
  }
}
