import { status } from '@grpc/grpc-js';

/** An error that reaches the client as this gRPC status, with a message meant for a person. */
export class ApiError extends Error {
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export const invalidArgument = (message: string): ApiError => new ApiError(status.INVALID_ARGUMENT, message);
export const notFound = (message: string): ApiError => new ApiError(status.NOT_FOUND, message);
export const alreadyExists = (message: string): ApiError => new ApiError(status.ALREADY_EXISTS, message);
export const failedPrecondition = (message: string): ApiError => new ApiError(status.FAILED_PRECONDITION, message);
export const unimplemented = (message: string): ApiError => new ApiError(status.UNIMPLEMENTED, message);
