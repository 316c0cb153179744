/**
 * Every error the library raises on purpose is a DsMigrateError: it carries a stable code,
 * the context a user needs to find the cause (file, migration, kind, key, field), and the CLI exit code.
 */
export type ErrorCode =
  | 'BAD_INPUT'
  | 'MODEL_DEFINITION'
  | 'TYPE_MISMATCH'
  | 'UNKNOWN_KIND'
  | 'CONNECTION'
  | 'DATASTORE'
  | 'TOO_MANY_ENTITY_GROUPS'
  | 'MIGRATION_LOAD'
  | 'MIGRATION_FAILED'
  | 'LEASE_HELD'
  | 'LEASE_LOST'
  | 'JOB_CLOSED'
  | 'JOB_CLEARED'
  | 'RUN_ABANDONED'
  | 'STEP_ATTEMPTS_SPENT'
  | 'CONFLICT'
  | 'UNIQUE_VIOLATION'
  | 'OPERATION_FAILED'
  | 'CLOUD_TASKS'
  | 'COMMIT_OUTCOME_UNKNOWN'
  | 'ABORTED';

export interface ErrorContext {
  file?: string;
  migration?: string;
  operation?: string;
  kind?: string;
  namespace?: string;
  key?: string;
  field?: string;
  [extra: string]: unknown;
}

/**
 * 0 done, 1 failed, 2 bad usage or input, 3 the lease is another run's (held, lost, or this run's job
 * closed or cleared by the holder), 4 a Cloud Tasks step kept failing until its attempts were spent
 * (the worker cannot run it: see the message for the fix). README.md lists them.
 */
export type ExitCode = 0 | 1 | 2 | 3 | 4;

const EXIT_CODES: Record<ErrorCode, ExitCode> = {
  BAD_INPUT: 2,
  MODEL_DEFINITION: 2,
  TYPE_MISMATCH: 1,
  UNKNOWN_KIND: 2,
  CONNECTION: 2,
  DATASTORE: 1,
  TOO_MANY_ENTITY_GROUPS: 1,
  MIGRATION_LOAD: 2,
  MIGRATION_FAILED: 1,
  LEASE_HELD: 3,
  LEASE_LOST: 3,
  JOB_CLOSED: 3,
  JOB_CLEARED: 3,
  RUN_ABANDONED: 3,
  STEP_ATTEMPTS_SPENT: 4,
  CONFLICT: 1,
  UNIQUE_VIOLATION: 1,
  OPERATION_FAILED: 1,
  CLOUD_TASKS: 1,
  COMMIT_OUTCOME_UNKNOWN: 1,
  ABORTED: 1,
};

export class DsMigrateError extends Error {
  readonly code: ErrorCode;
  readonly context: ErrorContext;

  constructor(code: ErrorCode, message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DsMigrateError';
    this.code = code;
    this.context = context;
  }

  get exitCode(): ExitCode {
    return EXIT_CODES[this.code];
  }
}

export function isDsMigrateError(error: unknown, code?: ErrorCode): error is DsMigrateError {
  return error instanceof DsMigrateError && (code === undefined || error.code === code);
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** `text` ended with a full stop, unless it ends its sentence already: a quoted message often does. */
export function sentence(text: string): string {
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

/**
 * A module's load error quoted in one of ours: its first lines on one line (a parser gives the place on its
 * second, and a stack follows), ending with one full stop.
 */
export function quotedLoadError(error: unknown): string {
  const lines = errorMessage(error).split('\n').slice(0, 3);
  return sentence(
    lines
      .map((line) => line.trim())
      .filter((line) => line !== '')
      .join(' '),
  );
}
