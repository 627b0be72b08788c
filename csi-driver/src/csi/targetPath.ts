import { lstat, readdir } from 'node:fs/promises';
import { mountAt } from '../mount/mountpoint.js';
import { failedPrecondition, invalidArgument } from './errors.js';

/** Linux PATH_MAX counts the terminating NUL; NAME_MAX bounds each component. */
const PATH_MAX_BYTES = 4096;
const NAME_MAX_BYTES = 255;

/** Control characters have no business in a volume id: it lands in records, logs and metric labels. */
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

const quoted = (text: string): string => JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}…` : text);

export function checkVolumeId(volumeId: string): void {
  if (!volumeId) throw invalidArgument('volume_id is required');
  if (CONTROL_CHARS.test(volumeId)) throw invalidArgument(`volume_id must not contain control characters, got ${quoted(volumeId)}`);
}

/**
 * A path the CO sends (target_path, volume_path) as the plugin uses it: absolute, without NUL,
 * within PATH_MAX and NAME_MAX, and without `..` (the plugin's working directory, or a symlink
 * before the `..`, would otherwise decide where it points). Trailing and doubled slashes are
 * normalized away, so one target has one publish record.
 */
export function checkedPath(field: string, path: string): string {
  if (!path) throw invalidArgument(`${field} is required`);
  const problem = pathProblem(field, path);
  if (problem) throw invalidArgument(problem);
  return normalized(path);
}

/** Why `path` (non-empty) cannot be a target path, if it cannot. */
export function pathProblem(field: string, path: string): string | undefined {
  if (path.includes('\0')) return `${field} must not contain NUL bytes, got ${quoted(path)}`;
  if (!path.startsWith('/')) return `${field} must be an absolute path, got ${quoted(path)}`;
  const bytes = Buffer.byteLength(path);
  if (bytes >= PATH_MAX_BYTES) return `${field} is ${bytes} bytes long; paths are limited to ${PATH_MAX_BYTES - 1} (PATH_MAX)`;
  const components = componentsOf(path);
  if (components.includes('..')) return `${field} must not contain ".." components, got ${quoted(path)}`;
  const long = components.find((c) => Buffer.byteLength(c) > NAME_MAX_BYTES);
  if (long !== undefined) return `${field} has a component of ${Buffer.byteLength(long)} bytes; names are limited to ${NAME_MAX_BYTES} (NAME_MAX)`;
  if (components.length === 0) return `${field} must not be the root directory`;
  return undefined;
}

/** `path` (absolute, no problem) without `.`, doubled and trailing slashes. */
export const normalized = (path: string): string => `/${componentsOf(path).join('/')}`;

const componentsOf = (path: string): string[] => path.split('/').filter((c) => c !== '' && c !== '.');

/** What is at a checked target: nothing yet, an empty directory, or a mount point (not looked into). */
export type TargetState = 'missing' | 'empty' | 'mountpoint';

/**
 * Looks at `target` and every directory on the way with lstat, so nothing is followed: a symbolic
 * link anywhere on the path is refused (a pod's hostPath can plant one, and a mount would then land
 * on its destination), as is a target that is a file or a directory with something in it. A mount
 * point at the target is reported, never stat'ed: a hung FUSE mount there would block the call.
 */
export async function inspectTarget(target: string): Promise<TargetState> {
  if (!(await checkAncestors(target))) return 'missing';
  if (await mountAt(target)) return 'mountpoint';
  const kind = await kindOf(target);
  if (kind === 'missing') return 'missing';
  if (kind === 'symlink') throw failedPrecondition(`${target} is a symbolic link; a target path must not contain one`);
  if (kind === 'other') throw failedPrecondition(`${target} exists and is not a directory`);
  if ((await readdir(target)).length > 0) throw failedPrecondition(`${target} is not empty; refusing to mount over its contents`);
  return 'empty';
}

/**
 * Refuses a symbolic link or non-directory among the directories above `target` (root first);
 * false when one of them does not exist (mkdir will create the rest). Also run before unpublishing,
 * so a link planted after the publish cannot redirect the unmount.
 */
export async function checkAncestors(target: string): Promise<boolean> {
  const parts = target.split('/').slice(1, -1);
  for (let i = 1; i <= parts.length; i++) {
    const path = `/${parts.slice(0, i).join('/')}`;
    const kind = await kindOf(path);
    if (kind === 'missing') return false;
    if (kind === 'symlink') throw failedPrecondition(`${path} is a symbolic link; a target path must not contain one`);
    if (kind === 'other') throw failedPrecondition(`${path} is not a directory`);
  }
  return true;
}

async function kindOf(path: string): Promise<'missing' | 'symlink' | 'directory' | 'other'> {
  try {
    const info = await lstat(path);
    return info.isSymbolicLink() ? 'symlink' : info.isDirectory() ? 'directory' : 'other';
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw error;
  }
}
