import { status } from '@grpc/grpc-js';
import { InvalidProjectIdError, StoreUnavailableError } from '@lighthouse-bridge/core';

/**
 * A refusal with the gRPC code the CSI spec prescribes for it. Services throw these; the server
 * maps every error to a status once, in `toStatus`.
 */
export class CsiError extends Error {
  override readonly name = 'CsiError';
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
  }
}

export const invalidArgument = (message: string): CsiError => new CsiError(status.INVALID_ARGUMENT, message);
export const notFound = (message: string): CsiError => new CsiError(status.NOT_FOUND, message);
export const alreadyExists = (message: string): CsiError => new CsiError(status.ALREADY_EXISTS, message);
export const aborted = (message: string): CsiError => new CsiError(status.ABORTED, message);
export const failedPrecondition = (message: string): CsiError => new CsiError(status.FAILED_PRECONDITION, message);
export const permissionDenied = (message: string): CsiError => new CsiError(status.PERMISSION_DENIED, message);

export function toStatus(error: unknown): { code: status; details: string } {
  if (error instanceof CsiError) return { code: error.code, details: error.message };
  if (error instanceof InvalidProjectIdError) return { code: status.INVALID_ARGUMENT, details: error.message };
  if (error instanceof StoreUnavailableError) return { code: status.UNAVAILABLE, details: error.message };
  const message = error instanceof Error ? error.message : String(error);
  return { code: status.INTERNAL, details: message };
}
