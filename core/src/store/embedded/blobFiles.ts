import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { contentHash, isContentHash } from '../../events/contentHash.js';
import { writeFileAtomic } from '../../fs/atomicFile.js';
import { syncFiles } from '../../fs/syncFiles.js';
import type { BlobPacks } from './blobPacks.js';
import { CorruptLogError, isNotFound, statIfPresent } from './storeErrors.js';

/** Blobs up to this size are written without leaving the thread when no fsync is wanted (ADR 0082). */
const SMALL_BLOB_BYTES = 64 * 1024;

/** Content-addressed files `<projectDir>/blobs/<first two hex>/<sha256>`; fan-out keeps directories small. */
function blobPath(projectDir: string, hash: string): string {
  return join(projectDir, 'blobs', hash.slice(0, 2), hash);
}

/** Where the project's packs of small blobs live (blobPacks.ts). */
export function packsDir(projectDir: string): string {
  return join(projectDir, 'blobs', 'packs');
}

/**
 * Stores `content` under its hash, durably, as a file of its own; or, given `unsynced`, without
 * waiting for the disk, handing the path that holds it to `unsynced` so that someone syncs it
 * later: small content goes into this process's pack, larger into a file.
 */
export async function putBlobFile(projectDir: string, content: Uint8Array, packs: BlobPacks, unsynced?: (path: string) => void, hash = contentHash(content)): Promise<string> {
  const path = blobPath(projectDir, hash);
  // A copy that is already a file is not looked for: the stat cost ~15 µs per close, more than
  // packing a second copy of small content. Already packed means present but perhaps not durable
  // (another process's pack, written unsynced), so it is synced like a new one by the sync stage.
  if (unsynced && content.byteLength <= SMALL_BLOB_BYTES) {
    unsynced(packs.locate(hash) ?? packs.append(hash, content));
    return hash;
  }
  // The name is the content's hash, and files only appear by atomic rename: present means complete,
  // but not durable (a CLI put beside a mount, a mount killed before its sync), so a present blob is
  // synced like a new one, now or by the sync stage.
  if (await statIfPresent(path)) {
    if (unsynced) unsynced(path);
    else await syncFiles([path]);
    return hash;
  }
  await writeFileAtomic(path, content, unsynced ? { sync: false } : {});
  unsynced?.(path);
  return hash;
}

/** Verified against its name on every read, so a damaged disk never serves wrong content. */
export async function getBlobFile(projectDir: string, hash: string, project: string, packs: BlobPacks): Promise<Buffer | undefined> {
  if (!isContentHash(hash)) return undefined;
  // A damaged packed copy does not hide a good file of the same content.
  const packed = packs.locate(hash) ? await packs.read(hash).catch((error: unknown) => (error instanceof CorruptLogError ? undefined : Promise.reject(error))) : undefined;
  if (packed) return packed;
  let content: Buffer;
  try {
    content = await readFile(blobPath(projectDir, hash));
  } catch (error) {
    // Not a file: perhaps in a pack another process wrote since we last looked (or only the damaged copy).
    if (isNotFound(error)) return packs.read(hash);
    throw error;
  }
  if (contentHash(content) !== hash) throw new CorruptLogError(`project ${project}: blob ${hash} is damaged (its content hashes differently)`);
  return content;
}
