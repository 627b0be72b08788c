import { ConcurrencyError, DomainError, StoreForbiddenError } from '@lighthouse-bridge/core';

/** Linux errno values, negated as FUSE wants them. */
export const E = {
  EPERM: -1,
  ENOENT: -2,
  EIO: -5,
  EBADF: -9,
  EAGAIN: -11,
  EACCES: -13,
  EBUSY: -16,
  EEXIST: -17,
  EXDEV: -18,
  ENOTDIR: -20,
  EISDIR: -21,
  EINVAL: -22,
  EFBIG: -27,
  ENOSPC: -28,
  EROFS: -30,
  ENAMETOOLONG: -36,
  ENOSYS: -38,
  ENOTEMPTY: -39,
  ENODATA: -61,
  ENOTSUP: -95,
} as const;

/** Thrown inside the filesystem for refusals that are not the aggregate's (read-only views, bad handles). */
export class FsError extends Error {
  override readonly name = 'FsError';
  constructor(
    readonly errno: number,
    message: string,
  ) {
    // An ordinary answer (every lookup of a name that does not exist is one), never reported: a
    // stack trace would cost more than the rest of the lookup.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message);
    Error.stackTraceLimit = limit;
  }
}

export function fsError(errno: number, message: string): FsError {
  return new FsError(errno, message);
}

/**
 * The one place errors become errno values. Anything unexpected is EIO, and is reported so a bug
 * does not hide behind a plausible errno.
 */
export function toErrno(error: unknown, report: (error: unknown) => void): number {
  if (error instanceof FsError) return error.errno;
  if (error instanceof DomainError) return E[error.code];
  if (error instanceof ConcurrencyError) return E.EBUSY;
  if (error instanceof StoreForbiddenError) return E.EACCES;
  report(error);
  return E.EIO;
}
