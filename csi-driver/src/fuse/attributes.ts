/** What stat(2) shows of one entry; times in milliseconds since the epoch. */
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

/** What statfs(2) shows of the mount. */
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
