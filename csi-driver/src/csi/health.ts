import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { lazyUnmount, mountAt } from '../mount/mountpoint.js';
import type { VolumeUsage } from './messages.js';

/**
 * What a target path looks like from outside the FUSE daemon. Probing happens in a child process
 * with a deadline: a statfs on a hung FUSE mount blocks the caller, and must never block the plugin.
 */
export type TargetProbe =
  | { state: 'healthy'; usage: VolumeUsage[] }
  | { state: 'unmounted' }
  | { state: 'dead'; message: string }
  | { state: 'hung'; message: string };

const PROBE_TIMEOUT_MS = 2000;

export async function probeTarget(path: string, timeoutMs = PROBE_TIMEOUT_MS): Promise<TargetProbe> {
  if (!(await mountAt(resolve(path)))) return { state: 'unmounted' };
  return new Promise((done) => {
    execFile(
      'stat',
      ['-f', '-c', '%S %b %f %a %c %d', '--', path],
      { timeout: timeoutMs, killSignal: 'SIGKILL' },
      (error, stdout, stderr) => {
        if (error) {
          if (error.killed || error.signal === 'SIGKILL') {
            done({ state: 'hung', message: `statfs did not answer within ${timeoutMs} ms` });
          } else {
            const reason = stderr.trim().replace(/^stat: /, '') || error.message;
            done({ state: 'dead', message: reason });
          }
          return;
        }
        const [bsize = 0, blocks = 0, bfree = 0, bavail = 0, files = 0, ffree = 0] = stdout.trim().split(' ').map(Number);
        done({
          state: 'healthy',
          usage: [
            { unit: 'BYTES', total: blocks * bsize, available: bavail * bsize, used: Math.max(0, blocks - bfree) * bsize },
            { unit: 'INODES', total: files, available: ffree, used: Math.max(0, files - ffree) },
          ],
        });
      },
    );
  });
}

/**
 * Detaches `path` when it holds a FUSE mount whose server is gone, as a killed plugin leaves its
 * mounts: the only kind of mount the plugin detaches without having a live handle on it. True when
 * it did. Probed out of process, so a live but hung mount of someone else's is not mistaken for a
 * dead one, nor blocks us.
 */
export async function detachDeadFuseMount(path: string): Promise<boolean> {
  const mounted = await mountAt(path);
  if (!mounted || !/^fuse(\.|$)/.test(mounted.fstype)) return false;
  if ((await probeTarget(path)).state !== 'dead') return false;
  await lazyUnmount(path);
  return true;
}
