import { writeSync } from 'node:fs';

/** All of `buf` at `position`, synchronously: a short write (a full disk) continues where it stopped or throws. */
export function writeAllAt(fd: number, buf: Uint8Array, position: number): void {
  for (let written = 0; written < buf.length; ) written += writeSync(fd, buf, written, buf.length - written, position + written);
}
