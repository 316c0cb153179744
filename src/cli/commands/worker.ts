import type { AddressInfo } from 'node:net';
import type { Argv, CommandModule } from 'yargs';
import { resolveWorkerSettings } from '../../executors/cloud-tasks';
import { DsMigrateError } from '../../errors';
import { startWorker } from '../../worker';
import { openContext } from '../context';
import { portFlag, portInUse, type GlobalFlags } from '../flags';
import { jsonLine } from '../output';

interface WorkerFlags extends GlobalFlags {
  port: number;
  host?: string;
}

export const workerCommand: CommandModule<GlobalFlags, WorkerFlags> = {
  command: 'worker',
  describe: 'Serve the endpoint that runs the tasks of `migrate --executor cloud-tasks`',
  builder: (y) =>
    y.option('port', { type: 'string', default: process.env.PORT || '8080', coerce: portFlag('--port'), describe: 'Port to listen on (default: $PORT, else 8080)' }).option('host', {
      type: 'string',
      describe: 'Interface to listen on (default: 0.0.0.0 with OIDC tokens; 127.0.0.1 with a shared secret, DSMIGRATE_WORKER_SECRET, which is for the emulator)',
    }) as unknown as Argv<WorkerFlags>,
  handler: async (argv) => {
    const ctx = await openContext(argv);
    try {
      const settings = resolveWorkerSettings(ctx.config.cloudTasks);
      const worker = await startWorker({ store: ctx.store, graph: ctx.graph, settings, port: argv.port, host: argv.host }).catch((error: unknown) => {
        throw listenError(error, argv);
      });
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

/** Why the worker could not listen, as a usage error naming the flag to change; other errors as they are. */
function listenError(error: unknown, argv: WorkerFlags): unknown {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') return portInUse(`--port ${argv.port}`, '--port', error);
  if (code === 'EACCES')
    return new DsMigrateError('BAD_INPUT', `--port ${argv.port} may not be used by this user (ports below 1024 are the system's): choose another.`, { flag: '--port' }, { cause: error });
  if (code === 'ENOTFOUND' || code === 'EADDRNOTAVAIL' || code === 'EAI_AGAIN') {
    return new DsMigrateError(
      'BAD_INPUT',
      `--host ${argv.host} is not an address of this machine: give one of its interfaces' addresses (0.0.0.0 for all, 127.0.0.1 for this machine alone).`,
      { flag: '--host' },
      { cause: error },
    );
  }
  return error;
}
