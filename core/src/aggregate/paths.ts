import { DomainError } from './commands.js';
import { DEFAULT_LIMITS, type ProjectLimits } from './limits.js';

export type PathLimits = Pick<ProjectLimits, 'maxNameBytes' | 'maxPathBytes'>;

/**
 * The one canonical spelling of a project path: relative, `/`-separated, no empty or `.`
 * components, `''` for the root. `..` is refused outright rather than resolved: resolving it
 * lexically disagrees with POSIX whenever a component is a symlink or a file, and no legitimate
 * caller (FUSE hands us resolved paths) needs it. Throws `DomainError` (EINVAL, ENAMETOOLONG).
 */
export function normalizePath(path: string, limits: PathLimits = DEFAULT_LIMITS): string {
  if (path.includes('\0')) throw new DomainError('EINVAL', 'path contains a NUL byte');
  if (path.startsWith('/')) throw new DomainError('EINVAL', `path "${path}" is absolute; project paths are relative`);
  const parts: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') throw new DomainError('EINVAL', `path "${path}" contains ".."`);
    if (Buffer.byteLength(part) > limits.maxNameBytes) {
      throw new DomainError('ENAMETOOLONG', `name "${part.slice(0, 32)}..." is longer than ${limits.maxNameBytes} bytes`);
    }
    parts.push(part);
  }
  const normalized = parts.join('/');
  if (Buffer.byteLength(normalized) > limits.maxPathBytes) {
    throw new DomainError('ENAMETOOLONG', `path is longer than ${limits.maxPathBytes} bytes`);
  }
  return normalized;
}

/** The directory holding `path` (`''` for top-level entries). Undefined for the root. */
export function parentOf(path: string): string | undefined {
  if (path === '') return undefined;
  const slash = path.lastIndexOf('/');
  return slash < 0 ? '' : path.slice(0, slash);
}

/** The last component of a normalized path. */
export function nameOf(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

export function joinPath(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

/** True when `path` is `ancestor` or lies beneath it. */
export function isWithin(path: string, ancestor: string): boolean {
  return ancestor === '' || path === ancestor || path.startsWith(`${ancestor}/`);
}
