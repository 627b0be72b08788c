import { open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fsyncDir } from './atomicFile.js';

/** Two at a time: libuv's pool has four threads, and a mount's reads and writes must not queue behind a thousand fsyncs. */
const SYNC_LANES = 2;

/** fsync of each file, then of each directory holding one. */
export async function syncFiles(files: readonly string[]): Promise<void> {
  const syncFile = async (path: string): Promise<void> => {
    const file = await open(path, 'r');
    try {
      await file.sync();
    } finally {
      await file.close();
    }
  };
  await inLanes(files, SYNC_LANES, syncFile);
  await inLanes([...new Set(files.map((p) => dirname(p)))], SYNC_LANES, fsyncDir);
}

async function inLanes<T>(items: readonly T[], lanes: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(lanes, items.length) }, lane));
}

