import type { KernelCache } from './handles.js';

/** Past this many paths the record starts over: forgetting only costs one more READ per file. */
const MAX_PATHS = 100_000;

/**
 * Which content the kernel may hold in its page cache for each file of `current/`, so a reader's
 * open may keep it (ADR 0080). A reader's open records the hash it served; the next reader's open
 * keeps the kernel's pages only when the path still has that hash and nothing could have changed
 * them through this mount in between (a writer's open, truncate, unlink or rename forgets the
 * path). A change from another mount changes the hash, so its first reader here drops the pages.
 */
export class PageCacheRecord {
  private readonly hashes = new Map<string, string>();

  /** The cache mode for a reader's open of `path`, which shows the content `hash`. */
  readerOpen(path: string, hash: string): KernelCache {
    if (this.hashes.get(path) === hash) return 'keep';
    if (this.hashes.size >= MAX_PATHS) this.hashes.clear();
    this.hashes.set(path, hash);
    return 'page';
  }

  /** `path` may change through this mount: its next reader drops whatever the kernel holds. */
  forget(path: string): void {
    this.hashes.delete(path);
  }

  /** A directory moved: which of the kernel's inodes holds which path's pages is unknown. */
  forgetAll(): void {
    this.hashes.clear();
  }
}
