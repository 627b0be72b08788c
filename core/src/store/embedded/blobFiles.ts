import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { contentHash, isContentHash } from '../../events/contentHash.js';
import { writeFileAtomic, writeFileAtomicNow } from '../../fs/atomicFile.js';
import { syncFiles } from '../../fs/syncFiles.js';
import { CorruptLogError, isNotFound } from './storeErrors.js';

/** Blobs up to this size are written without leaving the thread when no fsync is wanted (ADR 0082). */
const SMALL_BLOB_BYTES = 64 * 1024;

/** Content-addressed files `<projectDir>/blobs/<first two hex>/<sha256>`; fan-out keeps directories small. */
function blobPath(projectDir: string, hash: string): string {
  return join(projectDir, 'blobs', hash.slice(0, 2), hash);
}

/**
 * Stores `content` under its hash, durably; or, given `unsynced`, without waiting for the disk,
 * handing the new file's path to `unsynced` so that someone syncs it later.
 */
export async function putBlobFile(projectDir: string, content: Uint8Array, unsynced?: (path: string) => void): Promise<string> {
  const hash = contentHash(content);
  const path = blobPath(projectDir, hash);
  // The name is the content's hash, and files only appear by atomic rename: present means complete,
  // but not durable: another process (a CLI put beside a mount, a mount killed before its sync) may
  // have written it unsynced. So a present blob is synced like a new one, now or by the sync stage.
  if (unsynced && content.byteLength <= SMALL_BLOB_BYTES) {
    if (!existsSync(path)) writeFileAtomicNow(path, content);
    unsynced(path);
    return hash;
  }
  if (await exists(path)) {
    if (unsynced) unsynced(path);
    else await syncFiles([path]);
    return hash;
  }
  await writeFileAtomic(path, content, unsynced ? { sync: false } : {});
  unsynced?.(path);
  return hash;
}

/** Verified against its name on every read, so a damaged disk never serves wrong content. */
export async function getBlobFile(projectDir: string, hash: string, project: string): Promise<Buffer | undefined> {
  if (!isContentHash(hash)) return undefined;
  let content: Buffer;
  try {
    content = await readFile(blobPath(projectDir, hash));
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
  if (contentHash(content) !== hash) throw new CorruptLogError(`project ${project}: blob ${hash} is damaged (its content hashes differently)`);
  return content;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if (isNotFound(error)) return false;
    throw error;
  }
}
