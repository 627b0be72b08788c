import { resolve } from 'node:path';
import { mountAt, probeStatfs } from '../mount/mountpoint.js';
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

export async function probeTarget(path: string): Promise<TargetProbe> {
  if (!(await mountAt(resolve(path)))) return { state: 'unmounted' };
  const probe = await probeStatfs(path);
  if (probe.state !== 'answering') return probe;
  const { bsize, blocks, bfree, bavail, files, ffree } = probe;
  return {
    state: 'healthy',
    usage: [
      { unit: 'BYTES', total: blocks * bsize, available: bavail * bsize, used: Math.max(0, blocks - bfree) * bsize },
      { unit: 'INODES', total: files, available: ffree, used: Math.max(0, files - ffree) },
    ],
  };
}
