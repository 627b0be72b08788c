import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** findmnt's raw output hex-escapes what a mount point name may hold (`\x20` for a space). */
const unescaped = (text: string): string => text.replace(/\\x([0-9a-f]{2})/gi, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));

/** Detaches every mount at or under `dir` (deepest first); for cleanup after a test, even a failed one. */
export async function detachAllUnder(dir: string): Promise<void> {
  const { stdout } = await run('findmnt', ['--raw', '--noheadings', '--output', 'TARGET']);
  const points = stdout
    .split('\n')
    .map(unescaped)
    .filter((p) => p === dir || p.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  // Lazily, so a dead FUSE mount or a process still inside one does not keep it attached.
  for (const point of points) await run('umount', ['--lazy', '--', point]).catch(() => undefined);
}
