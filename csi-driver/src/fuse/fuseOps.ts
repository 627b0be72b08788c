import type { FuseOperations, FuseStat, OpenDone } from 'fuse-native';
import type { ProjectId } from '@lighthouse-bridge/core';
import { fuseOpDuration, projectLabels } from '@lighthouse-bridge/core/observability';
import type { BridgeFs, Opened } from './bridgeFs.js';
import { E, toErrno } from './errno.js';
import { openFlags } from './nativeMount.js';

type Result<T> = T | Promise<T>;
type Observe = (seconds: number) => void;

/**
 * Binds a BridgeFs to fuse-native's callback API: times every operation into
 * `lighthouse_bridge_fuse_op_duration_seconds{op,namespace,project}` and turns thrown errors into errno values here,
 * and only here. `report` hears about failures that are not an ordinary refusal (EIO).
 */
export function fuseOperations(fs: BridgeFs, project: ProjectId, report: (op: string, error: unknown) => void): FuseOperations {
  const who = projectLabels(project);
  const observers = new Map<string, Observe>();
  const observer = (op: string): Observe => {
    let observe = observers.get(op);
    if (!observe) {
      const child = fuseOpDuration.labels({ op, ...who });
      observe = (seconds) => child.observe(seconds);
      observers.set(op, observe);
    }
    return observe;
  };

  function settle<T>(op: string, work: () => Result<T>, done: (errno: number, value?: T) => void): void {
    const observe = observer(op);
    const start = performance.now();
    const fail = (error: unknown): void => {
      observe((performance.now() - start) / 1000);
      done(toErrno(error, (e) => report(op, e)));
    };
    let result: Result<T>;
    try {
      result = work();
    } catch (error) {
      fail(error);
      return;
    }
    if (result instanceof Promise) {
      result.then((value) => {
        observe((performance.now() - start) / 1000);
        done(0, value);
      }, fail);
    } else {
      observe((performance.now() - start) / 1000);
      done(0, result);
    }
  }

  /** open/create answer with the descriptor and its cache flags for the kernel. */
  const opened = (cb: OpenDone) => (errno: number, value?: Opened) => (value ? cb(errno, value.fd, openFlags(value)) : cb(errno));

  /** read/write answer with one number: a byte count, or a negative errno. */
  const count = (cb: (result: number) => void) => (errno: number, n?: number) => cb(errno < 0 ? errno : (n ?? 0));

  return {
    init: (cb) => cb(0),
    statfs: (_path, cb) => settle('statfs', () => fs.statfs(), cb),
    getattr: (path, cb) => settle('getattr', () => fs.getattr(path), cb),
    readdir: (path, cb) => settle('readdir', () => fs.readdir(path), cb),
    readlink: (path, cb) => settle('readlink', () => fs.readlink(path), cb),
    open: (path, flags, cb) => settle('open', () => fs.open(path, flags), opened(cb)),
    create: (path, mode, cb) => settle('create', () => fs.create(path, mode), opened(cb)),
    read: (_path, fd, buf, len, pos, cb) => settle('read', () => fs.read(fd, buf, len, pos), count(cb)),
    write: (_path, fd, buf, len, pos, cb) => settle('write', () => fs.write(fd, buf, len, pos), count(cb)),
    flush: (_path, fd, cb) => settle('flush', () => fs.flush(fd), cb),
    fsync: (_path, _datasync, fd, cb) => settle('fsync', () => fs.fsync(fd), cb),
    fsyncdir: (_path, _datasync, _fd, cb) => settle('fsyncdir', () => fs.fsyncdir(), cb),
    release: (_path, fd, cb) => settle('release', () => fs.release(fd), cb),
    truncate: (path, size, cb) => settle('truncate', () => fs.truncate(path, size), cb),
    ftruncate: (_path, fd, size, cb) => settle('ftruncate', () => fs.ftruncate(fd, size), cb),
    unlink: (path, cb) => settle('unlink', () => fs.unlink(path), cb),
    rename: (from, to, cb) => settle('rename', () => fs.rename(from, to), cb),
    mkdir: (path, mode, cb) => settle('mkdir', () => fs.mkdir(path, mode), cb),
    rmdir: (path, cb) => settle('rmdir', () => fs.rmdir(path), cb),
    symlink: (target, path, cb) => settle('symlink', () => fs.symlink(target, path), cb),
    chmod: (path, mode, cb) => settle('chmod', () => fs.chmod(path, mode), cb),
    chown: (path, _uid, _gid, cb) => settle('chown', () => fs.chown(path), cb),
    // libfuse 2 calls us only when both times are set (ADR 0042): touch, cp -a, rsync -a are seen;
    // tar x and touch -m (atime omitted) are not. The mtime is right once our rebuilt binding loads.
    utimens: (path, _atime, mtime, cb) => settle('utimens', () => fs.utimens(path, plausibleTime(mtime)), cb),
    getxattr: (_path, _name, _position, cb) => cb(0, null),
    listxattr: (_path, cb) => cb(0, []),
    setxattr: (_path, _name, _value, _position, _flags, cb) => cb(E.ENOTSUP),
    removexattr: (_path, _name, cb) => cb(E.ENOTSUP),
  };
}

/**
 * What getattr would answer for `path` right after a change, when it can answer without waiting
 * (current/ always can); libfuse then needs no second round trip for it (ADR 0080).
 */
export function attrsAfterChange(fs: BridgeFs): (path: string) => FuseStat | undefined {
  return (path) => {
    try {
      const stat = fs.getattr(path);
      return stat instanceof Promise ? undefined : stat;
    } catch {
      return undefined; // gone already: libfuse asks, and hears so
    }
  };
}

/**
 * UTIME_NOW reaches fuse-native as a garbage timespec (tv_nsec = 2^30-1 turned into ms); anything
 * not a sensible instant means "now".
 */
function plausibleTime(ms: number): number {
  return Number.isFinite(ms) && ms > 1000 && ms < 8.64e15 ? ms : Date.now();
}
