import { link, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { StoreUnavailableError } from '../eventStore.js';
import { isNotFound } from './storeErrors.js';

/**
 * The one-writer-per-project rule across processes: a lock file created with O_EXCL holding the
 * writer's pid. A lock whose pid is dead is stale and taken over, which is what a SIGKILLed mount
 * leaves behind. (Within one process, stores share the project's writer; see projectRegistry.)
 */
export interface WriterLock {
  release(): Promise<void>;
}

const UNWRITTEN_LOCK_GRACE_MS = 2_000;

export async function acquireWriterLock(path: string, project: string): Promise<WriterLock> {
  for (let attempt = 0; attempt < 60; attempt++) {
    try {
      const handle = await open(path, 'wx');
      try {
        await handle.writeFile(`${process.pid}\n`);
        await handle.sync();
        const { ino } = await handle.stat();
        return { release: () => releaseIfOurs(path, ino) };
      } finally {
        await handle.close();
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = await readPid(path);
    if (holder === 'gone') continue;
    if (holder === 'unreadable') {
      // Created but the pid not yet written, or the writer died in between: wait it out.
      if (!(await olderThan(path, UNWRITTEN_LOCK_GRACE_MS))) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        continue;
      }
    } else if (holder !== process.pid && isAlive(holder)) {
      throw new StoreUnavailableError(`project ${project} is open for writing by pid ${holder} (a running mount?)`);
    }
    await takeOverStale(path, holder);
  }
  throw new StoreUnavailableError(`project ${project}: could not take the writer lock ${path} (it keeps changing hands)`);
}

/**
 * Moves the stale lock aside under a name of our own, then checks that what we moved is still
 * the stale one: if another process took it over in between, its fresh lock is put back.
 */
async function takeOverStale(path: string, stale: number | 'unreadable'): Promise<void> {
  const aside = `${path}.stale-${process.pid}-${Date.now()}`;
  try {
    await rename(path, aside);
  } catch (error) {
    if (isNotFound(error)) return;
    throw error;
  }
  const moved = await readPid(aside);
  if (moved !== 'gone' && moved !== stale) await link(aside, path).catch(() => undefined);
  await unlink(aside).catch(() => undefined);
}

async function readPid(path: string): Promise<number | 'gone' | 'unreadable'> {
  try {
    const text = await readFile(path, 'utf8');
    const pid = Number.parseInt(text, 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : 'unreadable';
  } catch (error) {
    if (isNotFound(error)) return 'gone';
    throw error;
  }
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
