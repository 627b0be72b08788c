import type { FuseStat, FuseStatfs } from '../attributes.js';
import { STORED_MODE_BITS, type ProjectWorkspace, type TreeNode } from '@lighthouse-bridge/core';

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
/** The stored bits (no setuid/setgid) without any write bit. */
const READ_ONLY_BITS = STORED_MODE_BITS & ~0o222;

/** stat(2) and statfs(2) answers for one mount: every entry belongs to the mounting user (ownership is not modelled). */
export class Stats {
  readonly mountedAtMs = Date.now();
  private readonly uid = process.getuid?.() ?? 0;
  private readonly gid = process.getgid?.() ?? 0;

  constructor(private readonly readOnly: boolean) {}

  node(node: TreeNode, immutable: boolean): FuseStat {
    // Masked here too, so an event recorded before setuid was dropped does not show it.
    const mask = immutable || this.readOnly ? READ_ONLY_BITS : STORED_MODE_BITS;
    switch (node.kind) {
      case 'file':
        return this.stat(S_IFREG | (node.mode & mask), node.size, node.mtimeMs, node.ctimeMs, 1);
      case 'directory':
        return this.stat(S_IFDIR | (node.mode & mask), 4096, node.mtimeMs, node.ctimeMs, 2);
      case 'symlink':
        return this.stat(S_IFLNK | 0o777, Buffer.byteLength(node.target), node.mtimeMs, node.ctimeMs, 1);
    }
  }

  file(mode: number, size: number, mtimeMs: number = this.mountedAtMs, ctimeMs: number = this.mountedAtMs): FuseStat {
    return this.stat(S_IFREG | mode, size, mtimeMs, ctimeMs, 1);
  }

  /** A directory of the mount's own making (not in the project): dated when the mount began. */
  dir(mode: number): FuseStat {
    return this.stat(S_IFDIR | mode, 4096, this.mountedAtMs, this.mountedAtMs, 2);
  }

  /** The project's limits as the filesystem's capacity; a read-only mount has no room for anyone. */
  statfs(workspace: ProjectWorkspace): FuseStatfs {
    const { limits, state } = workspace;
    const bsize = 4096;
    const free = Math.max(0, Math.floor((limits.maxProjectBytes - state.totalBytes) / bsize));
    const ffree = Math.max(0, limits.maxFiles - (state.nodes.size - 1));
    const ro = this.readOnly;
    return {
      bsize,
      frsize: bsize,
      blocks: Math.ceil(limits.maxProjectBytes / bsize),
      bfree: free,
      bavail: ro ? 0 : free,
      files: limits.maxFiles,
      ffree,
      favail: ro ? 0 : ffree,
      fsid: 0,
      flag: ro ? 1 : 0,
      namemax: limits.maxNameBytes,
    };
  }

  private stat(mode: number, size: number, mtimeMs: number, ctimeMs: number, nlink: number): FuseStat {
    return { mode, size, mtime: mtimeMs, atime: mtimeMs, ctime: ctimeMs, uid: this.uid, gid: this.gid, nlink, blksize: 4096, blocks: Math.ceil(size / 512) };
  }
}
