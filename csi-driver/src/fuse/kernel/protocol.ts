/**
 * The parts of the kernel's FUSE wire protocol (include/uapi/linux/fuse.h, protocol 7.38 plus
 * FUSE_NOTIFY_RESEND of 7.40) this server speaks. Everything is little-endian, as on every
 * architecture the node plugin ships for.
 */

export const KERNEL_VERSION = 7;
/** What we answer INIT with: the structures below are laid out as of this minor version. */
export const KERNEL_MINOR = 38;

export const ROOT_ID = 1;

export const Op = {
  LOOKUP: 1,
  FORGET: 2,
  GETATTR: 3,
  SETATTR: 4,
  READLINK: 5,
  SYMLINK: 6,
  MKNOD: 8,
  MKDIR: 9,
  UNLINK: 10,
  RMDIR: 11,
  RENAME: 12,
  LINK: 13,
  OPEN: 14,
  READ: 15,
  WRITE: 16,
  STATFS: 17,
  RELEASE: 18,
  FSYNC: 20,
  FLUSH: 25,
  INIT: 26,
  OPENDIR: 27,
  READDIR: 28,
  RELEASEDIR: 29,
  FSYNCDIR: 30,
  CREATE: 35,
  INTERRUPT: 36,
  DESTROY: 38,
  BATCH_FORGET: 42,
  READDIRPLUS: 44,
  RENAME2: 45,
} as const;

/** Requests the kernel expects no answer to. */
export const NO_REPLY: ReadonlySet<number> = new Set([Op.FORGET, Op.BATCH_FORGET, Op.INTERRUPT]);

/** Sizes of the fixed parts (bytes). */
export const IN_HEADER = 40;
export const OUT_HEADER = 16;
export const ATTR = 88;
export const ENTRY_OUT = 40 + ATTR;
export const ATTR_OUT = 16 + ATTR;
export const OPEN_OUT = 16;
export const INIT_OUT = 64;
export const STATFS_OUT = 80;
export const WRITE_IN = 40;
export const DIRENT_HEADER = 24;

/** fuse_init_in/out flags (the first word; flags2 holds bits 32-63). */
export const Init = {
  ASYNC_READ: 1 << 0,
  BIG_WRITES: 1 << 5,
  DO_READDIRPLUS: 1 << 13,
  /** With DO_READDIRPLUS: the plus form for a listing's first request, and where lookups followed. */
  READDIRPLUS_AUTO: 1 << 14,
  PARALLEL_DIROPS: 1 << 18,
  MAX_PAGES: 1 << 22,
  INIT_EXT: 1 << 30,
  /** FUSE_HAS_RESEND is bit 39: bit 7 of flags2 (kernel 6.9, protocol 7.40). */
  FLAGS2_HAS_RESEND: 1 << 7,
} as const;

export const Fopen = {
  DIRECT_IO: 1 << 0,
  KEEP_CACHE: 1 << 1,
  /** The kernel then sends no FLUSH at close: for handles that never have anything to flush. */
  NOFLUSH: 1 << 5,
} as const;

/** fuse_setattr_in.valid */
export const Fattr = {
  MODE: 1 << 0,
  UID: 1 << 1,
  GID: 1 << 2,
  SIZE: 1 << 3,
  ATIME: 1 << 4,
  MTIME: 1 << 5,
  FH: 1 << 6,
  MTIME_NOW: 1 << 8,
} as const;

export const RENAME_NOREPLACE = 1;

/** Notifications the server writes unasked (unique 0, the code in the error field). */
export const NOTIFY_RESEND = 7;

/** Bounds of one request: 128 KiB of write data plus the headers (max_write, max_pages 32). */
export const MAX_WRITE = 128 * 1024;
export const MAX_PAGES = MAX_WRITE / 4096;
export const REQUEST_BUFFER_BYTES = MAX_WRITE + 4096;
