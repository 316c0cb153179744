/**
 * Production limits that neither emulator enforces, so the client enforces them itself.
 * MAX_REQUEST_BYTES leaves headroom under the 10 MiB request limit for envelope and estimate error.
 */
export const MAX_LOOKUP_KEYS = 1000;
export const MAX_COMMIT_MUTATIONS = 500;
export const MAX_REQUEST_BYTES = 9 * 1024 * 1024;
/** The classic backend's limit on entity groups (root entities) in one transaction. */
export const CLASSIC_ENTITY_GROUP_LIMIT = 25;
/** Both emulators refuse gRPC messages over 4 MiB, below the production limit. */
export const EMULATOR_MAX_REQUEST_BYTES = 3.5 * 1024 * 1024;
