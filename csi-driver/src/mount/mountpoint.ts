import { execFile } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);
const UNMOUNT_TIMEOUT_MS = 10_000;

/**
 * Every mount point in /proc/self/mountinfo with its filesystem type (the last entry wins when
 * mounts are stacked). Reading it never touches the mounts themselves, so a hung one cannot block us.
 */
export async function mountTable(): Promise<Map<string, string>> {
  const table = await readFile('/proc/self/mountinfo', 'utf8');
  const points = new Map<string, string>();
  for (const line of table.split('\n')) {
    // id parent major:minor root mountpoint options [optional...] - fstype source superoptions
    const fields = line.split(' ');
    const dash = fields.indexOf('-');
    if (dash < 0 || fields[4] === undefined) continue;
    points.set(unescapeMountPath(fields[4]), fields[dash + 1] ?? '');
  }
  return points;
}

/** The mount table entry at `path` (absolute, resolved), if something is mounted exactly there. */
export async function mountAt(path: string): Promise<{ fstype: string } | undefined> {
  const fstype = (await mountTable()).get(path);
  return fstype === undefined ? undefined : { fstype };
}

/** True when `path` is a FUSE mount whose server is gone ("Transport endpoint is not connected"). */
export async function isDeadFuseMount(path: string): Promise<boolean> {
  try {
    await stat(path);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOTCONN';
  }
}

/**
 * Detaches whatever is mounted at `path`, lazily, so processes still inside it do not block us
 * (they see ENOTCONN/ENOENT from then on; a dead FUSE mount cannot be unmounted normally while
 * anything references it). Falls back to umount(8) for other mounts or where fusermount is missing.
 * Succeeds when nothing is mounted there.
 */
export async function lazyUnmount(path: string): Promise<void> {
  try {
    await run('fusermount', ['-u', '-z', '--', path], { timeout: UNMOUNT_TIMEOUT_MS });
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
