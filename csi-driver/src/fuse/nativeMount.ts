import Fuse, { type FuseOperations, type FuseOptions, type FuseStat, type OpenDone } from 'fuse-native';
import type { KernelCache } from './handles.js';

/**
 * Kernel cache settings for one mount, in seconds. fuse-native drops 0 (it tests truthiness), so
 * the smallest honest value is a small positive one.
 */
export interface CacheTimeouts {
  entry: number;
  attr: number;
  /** How long the kernel may remember that a name does not exist (libfuse's default is 0: never). */
  negative: number;
}

/**
 * Options fuse-native cannot express: `big_writes` + `max_write` (128 KiB writes instead of 4 KiB).
 * Never a mount-wide `direct_io`: it would override the per-open choice (ADR 0080).
 */
const EXTRA_OPTIONS = ['big_writes', 'max_write=131072', 'max_read=131072'];

/** The bits our rebuilt binding reads from open/create's third answer (20-open-flags.sh). */
const DIRECT_IO = 1;
const KEEP_CACHE = 2;
const NOTHING_TO_FLUSH = 4;

/** What open/create tell the kernel about one new descriptor. */
export function openFlags(opened: { cache: KernelCache; flushes: boolean }): number {
  const cache = opened.cache === 'direct' ? DIRECT_IO : opened.cache === 'keep' ? KEEP_CACHE : 0;
  return cache | (opened.flushes ? 0 : NOTHING_TO_FLUSH);
}

/**
 * Changes libfuse follows with a getattr of the same path; they answer with the attributes at once
 * (21-stat-after-change.sh), saving that round trip. `create` does too (see `_op_create`).
 */
const ANSWERED_WITH_ATTRS = ['chmod', 'chown', 'utimens', 'mkdir', 'truncate', 'ftruncate'] as const;

type Signal = (errno: number, ...values: unknown[]) => void;
type OpHandler = (signal: Signal, path: string, ...rest: unknown[]) => void;

/** The entry's attributes right after a change, when known without waiting; else libfuse asks. */
export type AttrsAfterChange = (path: string) => FuseStat | undefined;

class BridgeFuse extends Fuse {
  constructor(
    mountpoint: string,
    ops: FuseOperations,
    options: FuseOptions,
    private readonly negativeTimeout: number,
    private readonly attrsAfter: AttrsAfterChange,
  ) {
    super(mountpoint, ops, options);
    // fuse-native looks its handlers up on the instance; each of these keeps its own argument
    // decoding and only gains the attributes in its answer.
    const handlers = this as unknown as Record<string, OpHandler>;
    for (const op of ANSWERED_WITH_ATTRS) {
      const base = handlers[`_op_${op}`]!.bind(this);
      handlers[`_op_${op}`] = (signal, path, ...rest) => base((errno) => signal(errno, this.attrsArray(errno, path)), path, ...rest);
    }
  }

  private attrsArray(errno: number, path: string): Uint32Array | undefined {
    const stat = errno === 0 ? this.attrsAfter(path) : undefined;
    return stat && statArray(stat);
  }

  protected override _fuseOptions(): string {
    const base = super._fuseOptions();
    const extra = [...EXTRA_OPTIONS, `negative_timeout=${this.negativeTimeout}`].join(',');
    return base === '' ? `-o${extra}` : `${base},${extra}`;
  }

  // fuse-native's own versions drop everything but the descriptor.
  protected override _op_open(signal: OpenDone, path: string, flags: number): void {
    this.ops.open?.(path, flags, (errno, fd, openFlags) => signal(errno, fd, openFlags));
  }

  protected override _op_create(signal: OpenDone, path: string, mode: number): void {
    this.ops.create?.(path, mode, (errno, fd, openFlags) => signal(errno, fd, openFlags, this.attrsArray(errno, path)));
  }
}

export interface NativeMount {
  /** Lazy unmount (`fusermount -uz`), then stops the session. */
  unmount(): Promise<void>;
}

/**
 * A stat in the binding's layout (its `populate_stat`): mode, uid, gid, size (low, high word), dev,
 * nlink, ino, rdev, blksize, blocks (low, high), atime, mtime, ctime (ms, low and high words).
 */
function statArray(stat: FuseStat): Uint32Array {
  const ints = new Uint32Array(18);
  const words = (at: number, value: number): void => {
    ints[at] = value % 2 ** 32;
    ints[at + 1] = Math.floor(value / 2 ** 32);
  };
  ints[0] = stat.mode;
  ints[1] = stat.uid;
  ints[2] = stat.gid;
  words(3, stat.size);
  ints[6] = stat.nlink;
  ints[9] = stat.blksize ?? 0;
  words(10, stat.blocks ?? 0);
  words(12, stat.atime);
  words(14, stat.mtime);
  words(16, stat.ctime);
  return ints;
}

export function mountFuse(mountpoint: string, ops: FuseOperations, cache: CacheTimeouts, attrsAfter: AttrsAfterChange): Promise<NativeMount> {
  const fuse = new BridgeFuse(
    mountpoint,
    ops,
    {
      // Without this fuse-native arms a timer per operation (ADR 0040: ~3x the latency).
      timeout: false,
      entryTimeout: cache.entry,
      attrTimeout: cache.attr,
      fsname: 'lighthouse-bridge',
      subtype: 'lighthouse-bridge',
      // Pods run as many users; only root may ask for this, and the node plugin is root.
      allowOther: process.getuid?.() === 0,
    },
    cache.negative,
    attrsAfter,
  );
  return new Promise((resolve, reject) => {
    fuse.mount((error) => {
      if (error) return reject(error);
      resolve({
        unmount: () =>
          new Promise<void>((done, fail) => {
            fuse.unmount((e) => (e ? fail(e) : done()));
          }),
      });
    });
  });
}
