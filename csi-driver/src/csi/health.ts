import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { mountTable } from '../mount/mountpoint.js';
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

export async function isMountPoint(path: string): Promise<boolean> {
  return (await mountTable()).has(resolve(path));
}

export async function probeTarget(path: string, timeoutMs = PROBE_TIMEOUT_MS): Promise<TargetProbe> {
  if (!(await isMountPoint(path))) return { state: 'unmounted' };
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
