import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { contentHash } from '../../events/contentHash.js';
import { writeAllAt } from '../../fs/writeAllAt.js';
import { CorruptLogError, isNotFound, statIfPresent } from './storeErrors.js';

/** A record: its content's length (u32 LE), its SHA-256 (32 bytes), the content. */
const HEADER_BYTES = 4 + 32;
/** Read at a time while scanning a pack another process (or an earlier instance) wrote. */
const SCAN_CHUNK_BYTES = 1 << 20;
/** The largest content a pack takes: a record always fits one scan chunk. */
const MAX_PACKED_BYTES = SCAN_CHUNK_BYTES - HEADER_BYTES;

/** Where the next scan of another process's pack starts, and the pack as it was then. */
interface Scanned {
  offset: number;
  size: number;
  mtimeMs: number;
}
/** This process's own pack: indexed as written, never scanned. */
const OWN: Scanned = { offset: Number.MAX_SAFE_INTEGER, size: 0, mtimeMs: 0 };

interface Place {
  file: string;
  offset: number;
  length: number;
}

/**
 * Small blobs packed into append-only files, `<projectDir>/blobs/packs/*.pack`, one per store
 * instance that writes any (ADR 0088). A blob file of its own cost a mkdir, an open, a write, a
 * close and a rename on the mount's thread, and an open, fsync and close on the thread pool at the
 * next group commit: ~70 µs of a ~90 µs writeFile (in-process). A pack record is one write, and one fsync of
 * the pack per group commit covers all of them.
 *
 * Readers index what they scan, and every record is checked against its hash both when scanned and
 * when read: a record cut short by a crash, or still being written by another process, is simply
 * not there yet. The writer writes at its own offset, so a write that failed halfway is overwritten
 * by the next record.
 */
export class BlobPacks {
  private readonly index = new Map<string, Place>();
  private readonly scanned = new Map<string, Scanned>();
  private own: { path: string; fd: number; size: number } | undefined;
  private scanning: Promise<void> | undefined;
  private queued: Promise<void> | undefined;

  constructor(
    private readonly dir: string,
    private readonly label: string,
  ) {}

  /** The pack holding `hash`, as far as this instance knows; undefined when none it has seen does. */
  locate(hash: string): string | undefined {
    return this.index.get(hash)?.file;
  }

  /** Appends `content` (whose hash is `hash`) to this instance's pack, synchronously; returns the pack's path. */
  append(hash: string, content: Uint8Array): string {
    if (content.byteLength > MAX_PACKED_BYTES) throw new RangeError(`a pack takes blobs up to ${MAX_PACKED_BYTES} bytes, not ${content.byteLength}`);
    const own = this.own ?? this.openOwn();
    const record = Buffer.allocUnsafe(HEADER_BYTES + content.byteLength);
    record.writeUInt32LE(content.byteLength, 0);
    record.write(hash, 4, 'hex');
    record.set(content, HEADER_BYTES);
    writeAllAt(own.fd, record, own.size);
    this.index.set(hash, { file: own.path, offset: own.size + HEADER_BYTES, length: content.byteLength });
    own.size += record.length;
    return own.path;
  }

  /** The content of `hash` from any pack, scanning what other writers added since the last look; verified. */
  async read(hash: string): Promise<Buffer | undefined> {
    if (!this.index.has(hash)) await this.lookAgain();
    const place = this.index.get(hash);
    if (!place) return undefined;
    const content = Buffer.allocUnsafe(place.length);
    const file = await open(place.file, 'r');
    try {
      const { bytesRead } = await file.read(content, 0, place.length, place.offset);
      if (bytesRead === place.length && contentHash(content) === hash) return content;
    } finally {
      await file.close();
    }
    // Whole and right when written or scanned, different now: damaged on disk, as a blob file can be.
    throw new CorruptLogError(`project ${this.label}: blob ${hash} in ${place.file} at offset ${place.offset} is damaged (its content hashes differently)`);
  }

  close(): void {
    if (this.own) closeSync(this.own.fd);
    this.own = undefined;
  }

  private openOwn(): { path: string; fd: number; size: number } {
    mkdirSync(this.dir, { recursive: true });
    const path = join(this.dir, `${Date.now().toString(36)}-${process.pid}-${randomBytes(4).toString('hex')}.pack`);
    this.own = { path, fd: openSync(path, 'wx'), size: 0 };
    this.scanned.set(path, OWN); // indexed as written
    return this.own;
  }

  /**
   * One scan at a time. A scan already running may have passed where the missing blob went, so a
   * miss then waits for the next one, which every miss arriving meanwhile shares: however many
   * readers miss at once, at most two scans run.
   */
  private lookAgain(): Promise<void> {
    const scan = (): Promise<void> => (this.scanning = this.scanAll().finally(() => (this.scanning = undefined)));
    if (!this.scanning) return scan();
    this.queued ??= this.scanning
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined;
        return scan();
      });
    return this.queued;
  }

  private async scanAll(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (error) {
      if (isNotFound(error)) return;
      throw error;
    }
    let chunk: Buffer | undefined;
    for (const name of names) {
      if (!name.endsWith('.pack')) continue;
      const path = join(this.dir, name);
      const last = this.scanned.get(path);
      if (last === OWN) continue;
      // Packs that did not change since the last look (most of them: their writers are gone) cost a
      // stat, a torn record at the end of one included.
      const now = await statIfPresent(path); // undefined: removed by hand, nothing to scan
      if (!now || now.size <= (last?.offset ?? 0) || (now.size === last?.size && now.mtimeMs === last.mtimeMs)) continue;
      chunk ??= Buffer.allocUnsafe(SCAN_CHUNK_BYTES);
      this.scanned.set(path, { offset: await this.scanFrom(path, last?.offset ?? 0, chunk), size: now.size, mtimeMs: now.mtimeMs });
    }
  }

  /** Indexes the whole records of `path` from `offset` on; returns where the next look starts. */
  private async scanFrom(path: string, offset: number, chunk: Buffer): Promise<number> {
    const file = await open(path, 'r');
    try {
      for (;;) {
        const { bytesRead } = await file.read(chunk, 0, chunk.length, offset);
        let at = 0;
        while (at + HEADER_BYTES <= bytesRead) {
          const end = at + HEADER_BYTES + chunk.readUInt32LE(at);
          if (end > bytesRead) break;
          const hash = chunk.toString('hex', at + 4, at + HEADER_BYTES);
          // Not whole yet (a writer mid-write) or damaged: stop here and look again next time.
          if (contentHash(chunk.subarray(at + HEADER_BYTES, end)) !== hash) return offset + at;
          if (!this.index.has(hash)) this.index.set(hash, { file: path, offset: offset + at + HEADER_BYTES, length: end - at - HEADER_BYTES });
          at = end;
        }
        // Nothing whole in a chunk (records always fit one): the end of what is there now.
        if (at === 0) return offset;
        offset += at;
      }
    } finally {
      await file.close();
    }
  }
}
