/**
 * The permission bits a project keeps. Ownership is not modelled (every entry belongs to whoever
 * mounts it), so set-user-ID and set-group-ID would grant the mounting user's identity to anyone who
 * runs the file: they are dropped on every write, mkdir and chmod, as filesystems without owners
 * (vfat, many FUSE filesystems) do. The sticky bit and rwx bits are kept.
 */
export const STORED_MODE_BITS = 0o1777;

export function storedMode(mode: number): number {
  return mode & STORED_MODE_BITS;
}
