import type { AddressInfo } from 'node:net';
import type { Argv, CommandModule } from 'yargs';
import { resolveWorkerSettings } from '../../executors/cloud-tasks';
import { startWorker } from '../../worker';
import { openContext } from '../context';
import type { GlobalFlags } from '../flags';
import { jsonLine } from '../output';

interface WorkerFlags extends GlobalFlags {
  port: number;
  host?: string;
}

export const workerCommand: CommandModule<GlobalFlags, WorkerFlags> = {
  command: 'worker',
  describe: 'Serve the endpoint that runs the tasks of `migrate --executor cloud-tasks`',
  builder: (y) =>
    y.option('port', { type: 'number', default: Number(process.env.PORT) || 8080, describe: 'Port to listen on (default: $PORT, else 8080)' }).option('host', {
      type: 'string',
      describe: 'Interface to listen on (default: 0.0.0.0 with OIDC tokens; 127.0.0.1 with a shared secret, DSMIGRATE_WORKER_SECRET, which is for the emulator)',
    }) as unknown as Argv<WorkerFlags>,
  handler: async (argv) => {
    const ctx = await openContext(argv);
    try {
      const settings = resolveWorkerSettings(ctx.config.cloudTasks);
      const worker = await startWorker({ store: ctx.store, graph: ctx.graph, settings, port: argv.port, host: argv.host });
      const auth = settings.auth.kind === 'hmac' ? 'shared secret' : `OIDC tokens for ${settings.auth.audience} from ${settings.auth.allowedServiceAccounts.join(', ')}`;
      const { address } = worker.server.address() as AddressInfo;
      if (argv.json) jsonLine({ event: 'listening', host: address, port: worker.port, auth: settings.auth.kind });
      else process.stderr.write(`dsmigrate worker listening on port ${worker.port} of ${address} (${ctx.graph.ordered.length} migrations; auth: ${auth})\n`);
      // Cloud Run and Kubernetes stop containers with SIGTERM: finish the requests under way first.
      // Kept listening, so that a signal sent again while stopping does not cut the requests under way short.
      await new Promise<void>((resolve) => {
        process.on('SIGTERM', resolve);
        process.on('SIGINT', resolve);
      });
      await worker.stop(10_000);
    } finally {
      await ctx.close();
    }
  },
};
