import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);
const UNMOUNT_TIMEOUT_MS = 10_000;
const STATFS_TIMEOUT_MS = 2000;

/**
 * Every mount point in /proc/self/mountinfo with its filesystem type (the last entry wins when
 * mounts are stacked). Reading it never touches the mounts themselves, so a hung one cannot block us.
 */
export async function mountTable(): Promise<Map<string, string>> {
  const points = new Map<string, string>();
  for (const entry of await mountEntries()) points.set(entry.path, entry.fstype);
  return points;
}

async function mountEntries(): Promise<{ path: string; fstype: string; device: string }[]> {
  const table = await readFile('/proc/self/mountinfo', 'utf8');
  const entries: { path: string; fstype: string; device: string }[] = [];
  for (const line of table.split('\n')) {
    // id parent major:minor root mountpoint options [optional...] - fstype source superoptions
    const fields = line.split(' ');
    const dash = fields.indexOf('-');
    if (dash < 0 || fields[4] === undefined) continue;
    entries.push({ path: unescapeMountPath(fields[4]), fstype: fields[dash + 1] ?? '', device: fields[2] ?? '' });
  }
  return entries;
}

/**
 * Ends the FUSE connection mounted at `path` through /sys/fs/fuse/connections (its id is the
 * mount's device minor, from mountinfo: a stat of the mount itself could block). Its users get
 * ENOTCONN at once instead of waiting for a server that will not come.
 */
export async function abortConnection(path: string): Promise<void> {
  for (const entry of await mountEntries()) {
    const minor = entry.device.split(':')[1];
    if (entry.path === path && /^fuse(\.|$)/.test(entry.fstype) && minor) await writeFile(`/sys/fs/fuse/connections/${minor}/abort`, '1');
  }
}

/** The mount table entry at `path` (absolute, resolved), if something is mounted exactly there. */
export async function mountAt(path: string): Promise<{ fstype: string } | undefined> {
  const fstype = (await mountTable()).get(path);
  return fstype === undefined ? undefined : { fstype };
}

/** What statfs on a mount point says, asked from a child process. */
export type StatfsProbe =
  | { state: 'answering'; bsize: number; blocks: number; bfree: number; bavail: number; files: number; ffree: number }
  | { state: 'dead'; message: string }
  | { state: 'hung'; message: string };

/**
 * statfs(2) on `path` in a child process with a deadline: on a hung FUSE mount it blocks the caller,
 * and must never block ours. A FUSE mount whose server is gone answers with an error ("dead").
 */
export function probeStatfs(path: string): Promise<StatfsProbe> {
  return new Promise((done) => {
    execFile('stat', ['-f', '-c', '%S %b %f %a %c %d', '--', path], { timeout: STATFS_TIMEOUT_MS, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      if (error) {
        if (error.killed || error.signal === 'SIGKILL') done({ state: 'hung', message: `statfs did not answer within ${STATFS_TIMEOUT_MS} ms` });
        else done({ state: 'dead', message: stderr.trim().replace(/^stat: /, '') || error.message });
        return;
      }
      const [bsize = 0, blocks = 0, bfree = 0, bavail = 0, files = 0, ffree = 0] = stdout.trim().split(' ').map(Number);
      done({ state: 'answering', bsize, blocks, bfree, bavail, files, ffree });
    });
  });
}

/**
 * True when `path` holds a FUSE mount whose server is gone, as a killed server leaves its mounts
 * (ENOTCONN). Probed out of process, so a live but hung mount is not mistaken for one, nor blocks us.
 */
async function isDeadFuseMount(path: string): Promise<boolean> {
  const mounted = await mountAt(path);
  if (!mounted || !/^fuse(\.|$)/.test(mounted.fstype)) return false;
  return (await probeStatfs(path)).state === 'dead';
}

/**
 * The one cleanup of a mount point nobody serves: detaches a dead FUSE mount at `path` (the only
 * kind of mount detached without a live handle on it) and leaves anything else. True when it did.
 */
export async function detachDeadFuseMount(path: string): Promise<boolean> {
  if (!(await isDeadFuseMount(path))) return false;
  await lazyUnmount(path);
  return true;
}

/**
 * Detaches whatever is mounted at `path`, lazily, so processes still inside it do not block us
 * (they see ENOTCONN/ENOENT from then on; a dead FUSE mount cannot be unmounted normally while
 * anything references it). fusermount3 (fuse3's setuid helper) lets a non-root owner detach its own
 * FUSE mount; umount(8) covers other mounts and machines without it.
 * Succeeds when nothing is mounted there.
 */
export async function lazyUnmount(path: string): Promise<void> {
  try {
    await run('fusermount3', ['-u', '-z', '--', path], { timeout: UNMOUNT_TIMEOUT_MS });
  } catch {
    try {
      await run('umount', ['-l', '--', path], { timeout: UNMOUNT_TIMEOUT_MS });
    } catch (error) {
      const stderr = String((error as { stderr?: unknown }).stderr ?? '').trim();
      if (/not mounted|no mount point/i.test(stderr)) return;
      throw new Error(`cannot unmount ${path}: ${stderr || (error as Error).message}`);
    }
  }
}

function unescapeMountPath(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}
