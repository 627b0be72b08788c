import { E, fsError } from './errno.js';

/** Default bound on the bytes a mount buffers for files open for writing (ADR 0043). */
export const DEFAULT_WRITE_BUFFER_BYTES = 256 * 1024 * 1024;

/**
 * The memory one mount may hold in write buffers, across all its open files. A file is buffered
 * whole while open (one event per close), so without a total, N files at the size limit cost N times
 * that limit. Past the budget a write, truncate or open for writing fails with ENOSPC, and `report`
 * hears one line saying why: the caller sees an errno it already handles, the operator the reason.
 */
export class WriteBudget {
  private used = 0;

  constructor(
    readonly limit: number,
    private readonly report: (message: string) => void,
  ) {}

  get usedBytes(): number {
    return this.used;
  }

  fits(bytes: number): boolean {
    return this.used + bytes <= this.limit;
  }

  /** Takes `bytes` for `path`, or throws ENOSPC (and reports it) when the mount has no room left. */
  reserve(bytes: number, path: string): void {
    if (!this.fits(bytes)) {
      const message = `write buffers full: ${path} needs ${bytes} more bytes, this mount holds ${this.used} of its ${this.limit} (--write-buffer-mib); refused with ENOSPC until open files are closed`;
      this.report(message);
      throw fsError(E.ENOSPC, message);
    }
    this.used += bytes;
  }

  release(bytes: number): void {
    this.used = Math.max(0, this.used - bytes);
  }
}
