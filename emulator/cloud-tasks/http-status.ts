import { status } from '@grpc/grpc-js';

/** google.rpc.Code for an HTTP status, per the mapping in google/rpc/code.proto; Attempt.response_status uses it. */
export function rpcCodeForHttpStatus(httpStatus: number): status {
  if (httpStatus >= 200 && httpStatus < 300) return status.OK;
  switch (httpStatus) {
    case 400:
      return status.INVALID_ARGUMENT;
    case 401:
      return status.UNAUTHENTICATED;
    case 403:
      return status.PERMISSION_DENIED;
    case 404:
      return status.NOT_FOUND;
    case 409:
      return status.ABORTED;
    case 429:
      return status.RESOURCE_EXHAUSTED;
    case 499:
      return status.CANCELLED;
    case 501:
      return status.UNIMPLEMENTED;
    case 503:
      return status.UNAVAILABLE;
    case 504:
      return status.DEADLINE_EXCEEDED;
  }
  if (httpStatus >= 400 && httpStatus < 500) return status.FAILED_PRECONDITION;
  if (httpStatus >= 500 && httpStatus < 600) return status.INTERNAL;
  return status.UNKNOWN;
}
