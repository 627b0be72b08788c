import { link, open, readFile, readlink, rename, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { StoreUnavailableError } from '../eventStore.js';
import { isNotFound } from './storeErrors.js';

/**
 * The one-writer-per-project rule across processes: a lock file created with O_EXCL naming the
 * writer as `<pid> host=<hostname> pidns=<pid namespace>`. A pid means something only on its own
 * host and in its own pid namespace (two containers sharing the store dir each see the other's
 * writer as a dead or unrelated pid), so a lock is taken over only when it names our host and
 * namespace and its pid is dead: what a SIGKILLed mount leaves behind. A lock from elsewhere is
 * treated as live; the error says how to break it. Locks written before host and namespace were
 * recorded hold a bare pid and are judged by the pid alone, as they always were.
 * (Within one process, stores share the project's writer; see projectRegistry.)
 */
export interface WriterLock {
  release(): Promise<void>;
}

const UNWRITTEN_LOCK_GRACE_MS = 2_000;

interface Holder {
  readonly pid: number;
  /** Absent in a lock written before host and namespace were recorded. */
  readonly host?: string;
  readonly pidNs?: string;
  /** The file's content, to recognise this very lock again after moving it aside. */
  readonly text: string;
}

export async function acquireWriterLock(path: string, project: string): Promise<WriterLock> {
  const self = await ourIdentity();
  for (let attempt = 0; attempt < 60; attempt++) {
    try {
      const handle = await open(path, 'wx');
      try {
        // One write of one line: a reader sees nothing, or a line without its newline (still being
        // written), or all of it. The pid leads, so older versions still read the pid.
        await handle.writeFile(`${process.pid} host=${self.host} pidns=${self.pidNs}\n`);
        await handle.sync();
        const { ino } = await handle.stat();
        return { release: () => releaseIfOurs(path, ino) };
      } finally {
        await handle.close();
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = await readHolder(path);
    if (holder === 'gone') continue;
    if (holder === 'unreadable') {
      // Created but the line not yet written, or the writer died in between: wait it out.
      if (!(await olderThan(path, UNWRITTEN_LOCK_GRACE_MS))) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        continue;
      }
    } else {
      const breakIt = `if that writer is gone, delete ${path}`;
      if (holder.host !== undefined && (holder.host !== self.host || holder.pidNs !== self.pidNs)) {
        throw new StoreUnavailableError(
          `project ${project} is open for writing by pid ${holder.pid} on host ${holder.host} in pid namespace ${holder.pidNs}, ` +
            `which this process (host ${self.host}, pid namespace ${self.pidNs}) cannot check; ${breakIt}`,
        );
      }
      // Our own pid is live too: the lock is held by another store or thread of this process.
      if (holder.pid === process.pid || isAlive(holder.pid)) {
        throw new StoreUnavailableError(`project ${project} is open for writing by pid ${holder.pid} (a running mount?); ${breakIt}`);
      }
    }
    await takeOverStale(path, holder === 'unreadable' ? holder : holder.text);
  }
  throw new StoreUnavailableError(`project ${project}: could not take the writer lock ${path} (it keeps changing hands)`);
}

/**
 * Moves the stale lock aside under a name of our own, then checks that what we moved is still
 * the stale one: if another process took it over in between, its fresh lock is put back.
 */
async function takeOverStale(path: string, stale: string): Promise<void> {
  const aside = `${path}.stale-${process.pid}-${Date.now()}`;
  try {
    await rename(path, aside);
  } catch (error) {
    if (isNotFound(error)) return;
    throw error;
  }
  const moved = await readHolder(aside);
  if (moved !== 'gone' && (moved === 'unreadable' ? moved : moved.text) !== stale) await link(aside, path).catch(() => undefined);
  await unlink(aside).catch(() => undefined);
}

const LOCK_LINE = /^(\d+)(?: host=(\S+) pidns=(\S+))?\n$/;

async function readHolder(path: string): Promise<Holder | 'gone' | 'unreadable'> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (isNotFound(error)) return 'gone';
    throw error;
  }
  const match = LOCK_LINE.exec(text);
  const pid = Number(match?.[1]);
  if (!match || !Number.isSafeInteger(pid) || pid <= 0) return 'unreadable';
  return { pid, text, ...(match[2] !== undefined && match[3] !== undefined ? { host: match[2], pidNs: match[3] } : {}) };
}

let identity: Promise<{ host: string; pidNs: string }> | undefined;

/** Our host and pid namespace as written in the lock (host URI-encoded, so the line splits on spaces). */
function ourIdentity(): Promise<{ host: string; pidNs: string }> {
  identity ??= readlink('/proc/self/ns/pid').then(
    (pidNs) => ({ host: encodeURIComponent(hostname()), pidNs }),
    // No /proc (macOS): no pid namespaces either, so the host alone places the pid.
    () => ({ host: encodeURIComponent(hostname()), pidNs: 'none' }),
  );
  return identity;
}

async function olderThan(path: string, ms: number): Promise<boolean> {
  try {
    return Date.now() - (await stat(path)).mtimeMs > ms;
  } catch (error) {
    if (isNotFound(error)) return false;
    throw error;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function releaseIfOurs(path: string, ino: number): Promise<void> {
  try {
    if ((await stat(path)).ino === ino) await unlink(path);
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
}
