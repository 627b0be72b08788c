import Fuse, { type FuseOperations, type FuseOptions, type OpenDone } from 'fuse-native';
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

class BridgeFuse extends Fuse {
  constructor(
    mountpoint: string,
    ops: FuseOperations,
    options: FuseOptions,
    private readonly negativeTimeout: number,
  ) {
    super(mountpoint, ops, options);
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
    this.ops.create?.(path, mode, (errno, fd, openFlags) => signal(errno, fd, openFlags));
  }
}

export interface NativeMount {
  /** Lazy unmount (`fusermount -uz`), then stops the session. */
  unmount(): Promise<void>;
}

export function mountFuse(mountpoint: string, ops: FuseOperations, cache: CacheTimeouts): Promise<NativeMount> {
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
