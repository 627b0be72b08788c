import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/**
 * Our N-API addon (csi-driver/native/addon.c, ADR 0083) and the keeper binary, both built by
 * scripts/build-native.sh into native/build/. Resolved from the package root, which is three levels
 * above this file in both src/ and dist/, so tests, the CLI and the image find the same files.
 */
const buildDir = fileURLToPath(new URL('../../../native/build/', import.meta.url));

/** Path of the built `lighthouse-bridge-keeper` program. */
export const keeperPath = `${buildDir}lighthouse-bridge-keeper`;

/** umount2(2)'s flag for a lazy unmount. */
export const MNT_DETACH = 2;

/** Errors from the addon carry the errno name (`code`, e.g. 'EPERM') and number, like Node's fs errors. */
export interface NativeError extends Error {
  code: string;
  errno: number;
}

/** A running reader of one /dev/fuse connection. */
export interface Pump {
  /** Ends the reader: returns at once, no onRequest after it, onEnd(0) follows once. Idempotent. */
  stop(): void;
}

export interface KeeperReply {
  reply: Buffer;
  /** Descriptors that came with the reply (close-on-exec); the caller owns and must close them. */
  fds: number[];
}

export interface NativeAddon {
  /** mount(2). */
  mount(source: string, target: string, fstype: string, flags: number, data: string): void;
  /** umount2(2); flags e.g. MNT_DETACH. */
  umount(target: string, flags: number): void;
  /** Non-root mount through fusermount3; returns the /dev/fuse descriptor (close-on-exec). */
  fusermountMount(target: string, options: string): number;
  /**
   * Reads requests from `fd` on this thread whenever the event loop sees it readable, and hands
   * each to onRequest, in order; when the connection ends (errno, ENODEV = 19 when unmounted) or
   * after stop() (0), onEnd is called once, later. While running it keeps the event loop alive.
   * Never closes `fd`; sets O_NONBLOCK on it.
   */
  startPump(fd: number, bufferSize: number, onRequest: (req: Buffer) => void, onEnd: (errno: number) => void): Pump;
  /** One request to the keeper's SOCK_SEQPACKET socket, with descriptors, and its one reply. */
  keeperCall(socketPath: string, message: Buffer, fds: number[], timeoutMs: number): KeeperReply;
}

export const native = createRequire(import.meta.url)(`${buildDir}lighthouse_bridge.node`) as NativeAddon;

export function isNativeError(error: unknown): error is NativeError {
  return error instanceof Error && typeof (error as Partial<NativeError>).code === 'string';
}
