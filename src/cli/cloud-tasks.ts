import { createTasksClient, resolveDispatchSettings, startRun } from '../executors/cloud-tasks';
import type { UndoConflicts } from '../operations';
import type { CliContext } from './context';
import { jsonLine, type Reporter } from './output';
import { watchRun } from './watch';

export interface CloudTasksMigrateFlags {
  target?: string;
  allowChanged: boolean;
  restart?: string[];
  waitLock: number;
  wait: boolean;
  json: boolean;
  maxRate?: number;
  strict: boolean;
  undoConflicts: UndoConflicts;
}

/** `migrate --executor cloud-tasks`: start the run, then watch it to its end unless --no-wait. */
export async function migrateWithCloudTasks(ctx: CliContext, flags: CloudTasksMigrateFlags, reporter: Reporter): Promise<void> {
  const settings = resolveDispatchSettings(ctx.config.cloudTasks);
  const tasks = createTasksClient(settings.emulatorHost);
  const say = (line: string) => (flags.json ? undefined : process.stderr.write(`${line}\n`));
  try {
    const started = await startRun({
      store: ctx.store,
      graph: ctx.graph,
      tasks,
      settings,
      controlNamespace: ctx.config.controlNamespace,
      target: flags.target,
      allowChanged: flags.allowChanged,
      restart: flags.restart,
      lockWaitMs: flags.waitLock * 1000,
      maxEntitiesPerSecond: flags.maxRate,
      strict: flags.strict,
      undoConflicts: flags.undoConflicts,
      onEvent: (e) => reporter.event(e),
    });
    for (const warning of started.warnings)
      if (flags.json) jsonLine({ event: 'warning', message: warning });
      else say(`warning: ${warning}`);
    const run = started.run;
    if (!run) {
      if (flags.json) jsonLine({ event: 'summary', applied: [], unapplied: [], faked: [], restarted: started.restarted, dryRun: [] });
      return;
    }
    if (flags.json) jsonLine({ event: 'dispatched', run: run.id, queue: started.queue, migrations: started.migrations, wait: flags.wait });
    if (!flags.wait) {
      say(`Run ${run.id} dispatched to ${started.queue}; it goes on in the background. \`dsmigrate status --watch\` follows it from any machine.`);
      return;
    }
    say(`Run ${run.id} dispatched to ${started.queue}; following it (Ctrl-C detaches, the run goes on).`);
    const summary = await watchRun(ctx, run.id, reporter, flags.json);
    if (summary && flags.json) jsonLine({ event: 'summary', ...summary, restarted: started.restarted });
  } finally {
    await tasks.close();
  }
}
