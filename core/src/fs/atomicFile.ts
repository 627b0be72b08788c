import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Writes `data` so that `path` holds either its old content or all of the new, even across a
 * power cut: temp file, fsync, rename, fsync of the directory (which makes the rename durable).
 * A write cut short leaves a hidden `*.tmp` file beside `path`, which readers may remove.
 * `sync: false` skips both fsyncs: atomic for readers and across a crash of the process only,
 * for a caller that fsyncs the file and its directory itself later.
 */
export async function writeFileAtomic(path: string, data: Uint8Array, options: { mode?: number; sync?: boolean } = {}): Promise<void> {
  const sync = options.sync ?? true;
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const temp = tempBeside(path);
  try {
    const file = await open(temp, 'wx', options.mode);
    try {
      await file.writeFile(data);
      if (sync) await file.sync();
    } finally {
      await file.close();
    }
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  if (sync) await fsyncDir(dir);
}

function tempBeside(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
}

export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
