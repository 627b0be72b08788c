import Fuse, { type FuseOperations } from 'fuse-native';

/**
 * Kernel cache settings for one mount, in seconds. fuse-native drops 0 (it tests truthiness), so
 * the smallest honest value is a small positive one.
 */
export interface CacheTimeouts {
  entry: number;
  attr: number;
}

/**
 * Options fuse-native cannot express: `direct_io` (every read reaches us, which streams/events and
 * .bridge/validate need; ADR 0041), `big_writes` + `max_write` (128 KiB writes instead of 4 KiB).
 */
const EXTRA_OPTIONS = ['direct_io', 'big_writes', 'max_write=131072', 'max_read=131072'];

class BridgeFuse extends Fuse {
  protected override _fuseOptions(): string {
    const base = super._fuseOptions();
    return base === '' ? `-o${EXTRA_OPTIONS.join(',')}` : `${base},${EXTRA_OPTIONS.join(',')}`;
  }
}

export interface NativeMount {
  /** Lazy unmount (`fusermount -uz`), then stops the session. */
  unmount(): Promise<void>;
}

export function mountFuse(mountpoint: string, ops: FuseOperations, cache: CacheTimeouts): Promise<NativeMount> {
  const fuse = new BridgeFuse(mountpoint, ops, {
    // Without this fuse-native arms a timer per operation (ADR 0040: ~3x the latency).
    timeout: false,
    entryTimeout: cache.entry,
    attrTimeout: cache.attr,
    fsname: 'lighthouse-bridge',
    subtype: 'lighthouse-bridge',
    // Pods run as many users; only root may ask for this, and the node plugin is root.
    allowOther: process.getuid?.() === 0,
  });
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
