/**
 * Production limits that neither emulator enforces, so the client enforces them itself.
 * MAX_REQUEST_BYTES leaves headroom under the 10 MiB request limit for envelope and estimate error.
 */
export const MAX_LOOKUP_KEYS = 1000;
export const MAX_COMMIT_MUTATIONS = 500;
/** The most one entity may take, counted as Datastore counts storage size (src/sharding/entity-size.ts storedBytes). */
export const MAX_ENTITY_BYTES = 1_048_572;
/** The most one key may take: what a commit counts for a key it cannot know ahead (a unique marker of a value never read). */
export const MAX_KEY_BYTES = 6 * 1024;
export const MAX_REQUEST_BYTES = 9 * 1024 * 1024;
/** The classic backend's limit on entity groups (root entities) in one transaction. */
export const CLASSIC_ENTITY_GROUP_LIMIT = 25;
/** Both emulators refuse gRPC messages over 4 MiB, below the production limit. */
export const EMULATOR_MAX_REQUEST_BYTES = 3.5 * 1024 * 1024;
