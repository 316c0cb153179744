import { DsMigrateError } from '../../errors';
import { MIN_SECRET_LENGTH } from './hmac';
import { parseQueuePath, type QueuePath } from './queue-path';
import { DEFAULT_QUEUE_SETTINGS, type QueueSettings } from './queue';

/**
 * `cloudTasks` in dsmigrate.config.{ts,js,json}. Each field also has an environment variable, which
 * wins. The shared secret comes only from the environment: config files get committed.
 */
export interface CloudTasksConfig {
  /** `projects/P/locations/L/queues/Q` (DSMIGRATE_TASKS_QUEUE). */
  queue?: string;
  /** The worker endpoint tasks are sent to (DSMIGRATE_WORKER_URL). */
  workerUrl?: string;
  /** Tasks carry an OIDC token for this account (DSMIGRATE_TASKS_SERVICE_ACCOUNT). */
  serviceAccountEmail?: string;
  /** The token's audience; default the worker URL (DSMIGRATE_TASKS_AUDIENCE). */
  audience?: string;
  /** Accounts whose tokens the worker accepts; default `[serviceAccountEmail]`. */
  allowedServiceAccounts?: string[];
  /** host:port of a Cloud Tasks emulator (CLOUD_TASKS_EMULATOR_HOST). */
  emulatorHost?: string;
  /** Work per task before it hands over to a continuation. Default 60. */
  sliceSeconds?: number;
  /** How long Cloud Tasks waits for the worker's answer, 15 to 1800. Default 600. */
  dispatchDeadlineSeconds?: number;
  /** The run's lock lapses after this long without a task running. Default 600. */
  leaseTtlSeconds?: number;
  /**
   * A step (a start or slice task) that fails this many times with an error that looked transient
   * fails its migration with that error, rather than retrying until the lease lapses. Default 20.
   */
  maxStepAttempts?: number;
  /** Oldest shared-secret signature the worker accepts. Default 86400. */
  signatureMaxAgeSeconds?: number;
  /** Used when the queue is created; an existing queue keeps its own settings. */
  queueSettings?: Partial<QueueSettings>;
}

export type DispatchAuth = { kind: 'oidc'; serviceAccountEmail: string; audience: string } | { kind: 'hmac'; secret: string };

/** What the `migrate` side needs to dispatch tasks. */
export interface DispatchSettings {
  queue: QueuePath;
  workerUrl: string;
  auth: DispatchAuth;
  emulatorHost?: string;
  sliceBudgetMs: number;
  dispatchDeadlineMs: number;
  leaseTtlMs: number;
  maxStepAttempts: number;
  queueSettings: QueueSettings;
}

export type WorkerAuth = { kind: 'oidc'; audience: string; allowedServiceAccounts: string[] } | { kind: 'hmac'; secret: string; maxAgeMs: number };

/** What the worker needs: how to authenticate requests, how to reach Cloud Tasks. */
export interface WorkerSettings {
  auth: WorkerAuth;
  emulatorHost?: string;
}

const SECRET_ENV = 'DSMIGRATE_WORKER_SECRET';

function merged(config: CloudTasksConfig = {}, env: NodeJS.ProcessEnv): CloudTasksConfig & { secret?: string } {
  const pick = (name: string): string | undefined => (env[name] === undefined || env[name] === '' ? undefined : env[name]);
  return {
    ...config,
    queue: pick('DSMIGRATE_TASKS_QUEUE') ?? config.queue,
    workerUrl: pick('DSMIGRATE_WORKER_URL') ?? config.workerUrl,
    serviceAccountEmail: pick('DSMIGRATE_TASKS_SERVICE_ACCOUNT') ?? config.serviceAccountEmail,
    audience: pick('DSMIGRATE_TASKS_AUDIENCE') ?? config.audience,
    emulatorHost: pick('CLOUD_TASKS_EMULATOR_HOST') ?? config.emulatorHost,
    secret: pick(SECRET_ENV),
  };
}

function seconds(value: number | undefined, fallback: number, name: string, range: [number, number]): number {
  const s = value ?? fallback;
  if (typeof s !== 'number' || !(s >= range[0] && s <= range[1])) {
    throw new DsMigrateError('BAD_INPUT', `cloudTasks.${name} must be between ${range[0]} and ${range[1]} seconds, not ${String(value)}.`, { field: name });
  }
  return s * 1000;
}

function attempts(value: number | undefined): number {
  const n = value ?? 20;
  if (!Number.isInteger(n) || n < 1 || n > 1000)
    throw new DsMigrateError('BAD_INPUT', `cloudTasks.maxStepAttempts must be a whole number from 1 to 1000, not ${String(value)}.`, { field: 'maxStepAttempts' });
  return n;
}

function checkSecret(secret: string): string {
  if (secret.length < MIN_SECRET_LENGTH) throw new DsMigrateError('BAD_INPUT', `${SECRET_ENV} must have at least ${MIN_SECRET_LENGTH} characters.`);
  return secret;
}

function checkUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new DsMigrateError('BAD_INPUT', `The worker URL "${url}" is not a URL.`, { field: 'workerUrl' });
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new DsMigrateError('BAD_INPUT', `The worker URL "${url}" must be http(s).`, { field: 'workerUrl' });
  return url;
}

export function resolveDispatchSettings(config: CloudTasksConfig | undefined, env: NodeJS.ProcessEnv = process.env): DispatchSettings {
  const c = merged(config, env);
  if (!c.queue) throw new DsMigrateError('BAD_INPUT', 'The Cloud Tasks executor needs a queue: set DSMIGRATE_TASKS_QUEUE or cloudTasks.queue (projects/P/locations/L/queues/Q).');
  const queue = parseQueuePath(c.queue);
  if (!c.workerUrl) throw new DsMigrateError('BAD_INPUT', 'The Cloud Tasks executor needs the worker URL: set DSMIGRATE_WORKER_URL or cloudTasks.workerUrl.');
  const workerUrl = checkUrl(c.workerUrl);
  let auth: DispatchAuth;
  if (c.secret !== undefined) auth = { kind: 'hmac', secret: checkSecret(c.secret) };
  else if (c.emulatorHost) {
    throw new DsMigrateError('BAD_INPUT', `The Cloud Tasks emulator cannot sign OIDC tokens: set ${SECRET_ENV} (the same value for the worker) to sign tasks with a shared secret.`);
  } else if (c.serviceAccountEmail) auth = { kind: 'oidc', serviceAccountEmail: c.serviceAccountEmail, audience: c.audience ?? workerUrl };
  else {
    throw new DsMigrateError('BAD_INPUT', `Tasks must authenticate to the worker: set DSMIGRATE_TASKS_SERVICE_ACCOUNT (OIDC tokens, production) or ${SECRET_ENV} (shared secret, emulator).`);
  }
  const sliceBudgetMs = seconds(c.sliceSeconds, 60, 'sliceSeconds', [0.05, 1500]);
  const dispatchDeadlineMs = seconds(c.dispatchDeadlineSeconds, 600, 'dispatchDeadlineSeconds', [15, 1800]);
  if (sliceBudgetMs > dispatchDeadlineMs / 2) {
    throw new DsMigrateError(
      'BAD_INPUT',
      `cloudTasks.sliceSeconds (${sliceBudgetMs / 1000}) must be at most half of dispatchDeadlineSeconds (${dispatchDeadlineMs / 1000}): a slice finishes its batch after the budget.`,
    );
  }
  return {
    queue,
    workerUrl,
    auth,
    emulatorHost: c.emulatorHost,
    sliceBudgetMs,
    dispatchDeadlineMs,
    leaseTtlMs: seconds(c.leaseTtlSeconds, 600, 'leaseTtlSeconds', [1, 86_400]),
    maxStepAttempts: attempts(c.maxStepAttempts),
    queueSettings: { ...DEFAULT_QUEUE_SETTINGS, ...c.queueSettings },
  };
}

/** The settings that make the worker check OIDC tokens: where each is set, for messages. */
const OIDC_SETTINGS = [{ key: 'serviceAccountEmail', env: 'DSMIGRATE_TASKS_SERVICE_ACCOUNT' }, { key: 'audience', env: 'DSMIGRATE_TASKS_AUDIENCE' }, { key: 'allowedServiceAccounts' }] as const;

export function resolveWorkerSettings(config: CloudTasksConfig | undefined, env: NodeJS.ProcessEnv = process.env): WorkerSettings {
  const c = merged(config, env);
  if (c.secret !== undefined) {
    // Either scheme alone is a deliberate choice; both at once is a mistake one of them would hide.
    const oidc = OIDC_SETTINGS.filter(({ key }) => c[key] !== undefined);
    if (oidc.length > 0) {
      const names = oidc.map((s) => ('env' in s ? `${s.env} or cloudTasks.${s.key}` : `cloudTasks.${s.key}`));
      throw new DsMigrateError(
        'BAD_INPUT',
        `The worker has both a shared secret (${SECRET_ENV}) and OIDC settings (${names.join('; ')}), and checks one or the other: unset ${SECRET_ENV} to check OIDC tokens (production), or remove the OIDC settings where the emulator is used.`,
        { field: oidc[0].key },
      );
    }
    const maxAgeMs = seconds(c.signatureMaxAgeSeconds, 86_400, 'signatureMaxAgeSeconds', [1, 30 * 86_400]);
    return { auth: { kind: 'hmac', secret: checkSecret(c.secret), maxAgeMs }, emulatorHost: c.emulatorHost };
  }
  const audience = c.audience ?? c.workerUrl;
  const allowed = c.allowedServiceAccounts ?? (c.serviceAccountEmail ? [c.serviceAccountEmail] : []);
  if (!audience || allowed.length === 0) {
    throw new DsMigrateError(
      'BAD_INPUT',
      `The worker authenticates every request and has nothing to check against: set DSMIGRATE_TASKS_AUDIENCE (or DSMIGRATE_WORKER_URL) and DSMIGRATE_TASKS_SERVICE_ACCOUNT for OIDC tokens, or ${SECRET_ENV} for the emulator.`,
    );
  }
  return { auth: { kind: 'oidc', audience, allowedServiceAccounts: allowed }, emulatorHost: c.emulatorHost };
}
