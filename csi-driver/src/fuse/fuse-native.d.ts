/**
 * The part of fuse-native 2.2.6 (CommonJS, untyped) this package uses. Callbacks take a negative
 * errno or 0; see ADR 0040 for the library's quirks we work around.
 */
declare module 'fuse-native' {
  type Done = (errno: number) => void;
  type DoneWith<T> = (errno: number, value?: T) => void;
  /** `flags` reaches libfuse only through our rebuilt binding (csi-driver/scripts/fuse-native/20-open-flags.sh). */
  export type OpenDone = (errno: number, fd?: number, flags?: number, attrs?: Uint32Array) => void;

  export interface FuseStat {
    mode: number;
    size: number;
    mtime: number;
    atime: number;
    ctime: number;
    uid: number;
    gid: number;
    nlink: number;
    blksize?: number;
    blocks?: number;
  }

  export interface FuseStatfs {
    bsize: number;
    frsize: number;
    blocks: number;
    bfree: number;
    bavail: number;
    files: number;
    ffree: number;
    favail: number;
    fsid: number;
    flag: number;
    namemax: number;
  }

  export interface FuseOperations {
    init?(cb: Done): void;
    statfs?(path: string, cb: DoneWith<FuseStatfs>): void;
    getattr?(path: string, cb: DoneWith<FuseStat>): void;
    readdir?(path: string, cb: (errno: number, names?: string[]) => void): void;
    open?(path: string, flags: number, cb: OpenDone): void;
    create?(path: string, mode: number, cb: OpenDone): void;
    read?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (bytes: number) => void): void;
    write?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (bytes: number) => void): void;
    flush?(path: string, fd: number, cb: Done): void;
    fsync?(path: string, datasync: number, fd: number, cb: Done): void;
    fsyncdir?(path: string, datasync: number, fd: number, cb: Done): void;
    release?(path: string, fd: number, cb: Done): void;
    truncate?(path: string, size: number, cb: Done): void;
    ftruncate?(path: string, fd: number, size: number, cb: Done): void;
    unlink?(path: string, cb: Done): void;
    rename?(src: string, dest: string, cb: Done): void;
    mkdir?(path: string, mode: number, cb: Done): void;
    rmdir?(path: string, cb: Done): void;
    chmod?(path: string, mode: number, cb: Done): void;
    chown?(path: string, uid: number, gid: number, cb: Done): void;
    utimens?(path: string, atime: number, mtime: number, cb: Done): void;
    symlink?(target: string, path: string, cb: Done): void;
    readlink?(path: string, cb: DoneWith<string>): void;
    getxattr?(path: string, name: string, position: number, cb: DoneWith<Buffer | null>): void;
    listxattr?(path: string, cb: DoneWith<string[]>): void;
    setxattr?(path: string, name: string, value: Buffer, position: number, flags: number, cb: Done): void;
    removexattr?(path: string, name: string, cb: Done): void;
  }

  export interface FuseOptions {
    timeout?: false | number;
    force?: boolean;
    mkdir?: boolean;
    debug?: boolean;
    allowOther?: boolean;
    defaultPermissions?: boolean;
    kernelCache?: boolean;
    autoCache?: boolean;
    maxRead?: number;
    fsname?: string;
    subtype?: string;
    entryTimeout?: number;
    attrTimeout?: number;
    acAttrTimeout?: number;
  }

  class Fuse {
    constructor(mountpoint: string, ops: FuseOperations, options?: FuseOptions);
    readonly mnt: string;
    mount(cb: (error: Error | null) => void): void;
    unmount(cb: (error: Error | null) => void): void;
    protected readonly ops: FuseOperations;
    /** Builds the `-o` argument for libfuse; overridden to add options fuse-native does not know. */
    protected _fuseOptions(): string;
    /** Calls ops.open/create and signals the native side; `signal(errno, fd, flags)`. Overridden to pass flags on. */
    protected _op_open(signal: OpenDone, path: string, flags: number): void;
    protected _op_create(signal: OpenDone, path: string, mode: number): void;
    static unmount(mountpoint: string, cb: (error: Error | null) => void): void;
  }
  export default Fuse;
}
