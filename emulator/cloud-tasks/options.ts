import type { FaultOptions, RandomSource } from './faults';
import type { DeadlineRange } from './task-input';
import type { OAuthTokenFor, OidcTokenFor } from './tokens';

export interface CloudTasksEmulatorOptions extends FaultOptions {
  /** Port to listen on; 0 (the default) picks a free one. */
  port?: number;
  /** Interface to listen on. Default 127.0.0.1. */
  hostname?: string;
  /** How long the name of a task that ran or was deleted stays reserved. Default 1 hour, as in Cloud Tasks. */
  tombstoneMs?: number;
  /**
   * Allowed task dispatch_deadline. Default 15 s to 30 min, as in Cloud Tasks; tests lower the
   * minimum to exercise deadlines quickly. Tasks without a deadline get 10 minutes.
   */
  dispatchDeadlineRange?: DeadlineRange;
  /** Token for `Authorization: Bearer` on tasks with oidc_token. Default: an unsigned JWT (see tokens.ts). */
  oidcTokenFor?: OidcTokenFor;
  /** Token for `Authorization: Bearer` on tasks with oauth_token. Default: an opaque fake. */
  oauthTokenFor?: OAuthTokenFor;
  /** Seed for fault injection decisions; ignored when `random` is given. Default: unseeded (Math.random). */
  seed?: number;
  /** Random source for fault injection decisions. */
  random?: RandomSource;
  /** Receives one line per attempt and per dropped task (the CLI prints them with --verbose). */
  log?: (line: string) => void;
}
