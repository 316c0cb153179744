export { CONTROL_KINDS, DATA_SIDE_KINDS, RESERVED_KIND_PREFIX, jobRef, jobKey, shardKey, shardKeysKey, migrationKey, leaseKey, runKey, transitionKey, type JobRef } from './keys';
export { decodeStored, decodeJson, corrupt } from './decode';
