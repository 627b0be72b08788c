import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { contentHash, isContentHash } from '../../events/contentHash.js';
import { writeFileAtomic, writeFileAtomicNow } from '../../fs/atomicFile.js';
import { CorruptLogError, isNotFound } from './storeErrors.js';

/** Blobs up to this size are written without leaving the thread when no fsync is wanted (ADR 0082). */
const SMALL_BLOB_BYTES = 64 * 1024;

/** Content-addressed files `<projectDir>/blobs/<first two hex>/<sha256>`; fan-out keeps directories small. */
function blobPath(projectDir: string, hash: string): string {
  return join(projectDir, 'blobs', hash.slice(0, 2), hash);
}

/** A blob stored without waiting for the disk: `note` gets its path, for someone to sync it later. */
export interface Unsynced {
  note(path: string): void;
  /** The disk is busy syncing: a synchronous create would stall the calling thread. */
  mayBlock: boolean;
}

/** Stores `content` under its hash, durably, or given `unsynced` without waiting for the disk. */
export async function putBlobFile(projectDir: string, content: Uint8Array, unsynced?: Unsynced): Promise<string> {
  const hash = contentHash(content);
  const path = blobPath(projectDir, hash);
  // The name is the content's hash, and files only appear by atomic rename: present means complete.
  if (unsynced && !unsynced.mayBlock && content.byteLength <= SMALL_BLOB_BYTES) {
    if (!existsSync(path)) {
      writeFileAtomicNow(path, content);
      unsynced.note(path);
    }
    return hash;
  }
  if (await exists(path)) return hash;
  await writeFileAtomic(path, content, unsynced ? { sync: false } : {});
  unsynced?.note(path);
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
