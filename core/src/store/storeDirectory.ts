import { realpath, stat, statfs } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { StoreUrlError } from './eventStore.js';

/**
 * Kernel filesystems that look like directories but hold no files of ours: a store there never
 * finds its lock or segments (file:///proc/self spun at 100% CPU). Magic numbers from statfs(2).
 */
const PSEUDO_FILESYSTEMS = new Map<number, string>([
  [0x9fa0, 'proc'],
  [0x62656572, 'sysfs'],
  [0x1cd1, 'devpts'],
  [0x27e0eb, 'cgroup'],
  [0x63677270, 'cgroup2'],
  [0x64626720, 'debugfs'],
  [0x74726163, 'tracefs'],
  [0x73636673, 'securityfs'],
  [0xcafe4a11, 'bpf'],
  [0x62656570, 'configfs'],
  [0x6165676c, 'pstore'],
  [0xde5e81e4, 'efivarfs'],
  [0x65735543, 'fusectl'],
  [0x19800202, 'mqueue'],
  [0x6e736673, 'nsfs'],
  [0x42494e4d, 'binfmt_misc'],
  [0xf97cff8c, 'selinuxfs'],
]);

/**
 * The kernel's trees, refused by name too: devtmpfs reports itself as tmpfs, and containers mount
 * tmpfs inside /sys. /dev/shm is an ordinary tmpfs and allowed.
 */
const KERNEL_TREES = ['/proc', '/sys', '/dev'];
const SHARED_MEMORY = '/dev/shm';

/**
 * Refuses a store directory that cannot hold a store: a regular file (or anything but a directory),
 * or a place on a kernel pseudo-filesystem (/proc, /sys, /dev), also when reached through a symlink.
 * The directory may not exist yet (the store creates it); its nearest existing ancestor decides.
 */
export async function requireStoreDirectory(dir: string): Promise<void> {
  const existing = await nearestExisting(dir);
  const info = await stat(existing.path);
  if (existing.missing.length === 0 && !info.isDirectory()) throw new StoreUrlError(`store directory ${dir} is not a directory`);
  if (existing.missing.length > 0 && !info.isDirectory()) throw new StoreUrlError(`store directory ${dir} cannot be created: ${existing.path} is not a directory`);
  const real = join(await realpath(existing.path), ...existing.missing);
  const tree = within(real, SHARED_MEMORY) ? undefined : KERNEL_TREES.find((top) => within(real, top));
  const pseudo = tree ?? PSEUDO_FILESYSTEMS.get((await statfs(existing.path)).type);
  if (pseudo !== undefined) throw new StoreUrlError(`store directory ${dir} is on ${pseudo}, a kernel pseudo-filesystem (${real}): use a directory on a real filesystem`);
}

function within(path: string, top: string): boolean {
  return path === top || path.startsWith(`${top}/`);
}

async function nearestExisting(dir: string): Promise<{ path: string; missing: string[] }> {
  const missing: string[] = [];
  let path = dir;
  for (;;) {
    try {
      await stat(path);
      return { path, missing };
    } catch (error) {
      const parent = dirname(path);
      const code = (error as NodeJS.ErrnoException).code;
      // ENOTDIR: a file on the way down, reported as such below.
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || parent === path) throw error;
      missing.unshift(basename(path));
      path = parent;
    }
  }
}
