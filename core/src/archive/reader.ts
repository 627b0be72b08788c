import type { Hash } from 'node:crypto';
import { contentHash } from '../events/contentHash.js';
import { ARCHIVE_MAGIC, ARCHIVE_VERSION, ArchiveError, archiveHash, MAX_RECORD_BYTES, type RecordKind } from './format.js';

const MAX_LINE_BYTES = 128;
const RECORD_LINE = /^([HBECT]) (\d{1,12}) ([0-9a-f]{64})$/;
const MAGIC_LINE = new RegExp(`^${ARCHIVE_MAGIC} (\\d{1,6})$`);

export interface ArchiveRecord {
  kind: RecordKind;
  body: Buffer;
  /** The body's sha256 (checked). */
  sha256: string;
  /** The sha256 of the magic line and every record line before this one. */
  archiveSoFar: string;
}

/** Pulls exact byte counts out of a stream of chunks, holding no more than one record. */
class ByteSource {
  private chunks: Buffer[] = [];
  private length = 0;
  private ended = false;
  /** Bytes handed out so far: where in the archive a problem is. */
  offset = 0;

  constructor(
    private readonly chunkIterator: AsyncIterator<unknown>,
    private readonly onChunk: (chunk: Buffer) => Promise<void>,
  ) {}

  private async fill(wanted: number): Promise<void> {
    while (this.length < wanted && !this.ended) {
      const next = await this.chunkIterator.next();
      if (next.done) {
        this.ended = true;
        break;
      }
      const chunk = typeof next.value === 'string' ? Buffer.from(next.value) : Buffer.from(next.value as Uint8Array);
      await this.onChunk(chunk);
      this.chunks.push(chunk);
      this.length += chunk.length;
    }
  }

  private joined(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0] ?? Buffer.alloc(0);
  }

  /** Exactly `n` bytes, or fewer when the stream ends first. */
  async take(n: number): Promise<Buffer> {
    await this.fill(n);
    const all = this.joined();
    const out = all.subarray(0, n);
    const rest = all.subarray(out.length);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.length = rest.length;
    this.offset += out.length;
    return out;
  }

  /** A line without its newline; undefined at a clean end; ArchiveError when longer than `max`. */
  async line(max: number): Promise<string | undefined> {
    for (;;) {
      const all = this.joined();
      const end = all.indexOf(0x0a);
      if (end >= 0 && end <= max) return (await this.take(end + 1)).subarray(0, end).toString('latin1');
      if (all.length > max) throw new ArchiveError('tampered', `archive damaged at byte ${this.offset}: no record line there`);
      const had = this.length;
      await this.fill(had + 1);
      if (this.length === had) {
        if (had === 0) return undefined;
        throw new ArchiveError('truncated', `archive truncated at byte ${this.offset + had}: it ends inside a record line`);
      }
    }
  }

  async atEnd(): Promise<boolean> {
    await this.fill(1);
    return this.length === 0;
  }
}

/**
 * Reads an archive record by record, checking the magic line, each record's sha256 and length,
 * and that the trailer is last and nothing follows it. `onChunk` sees every input chunk as it is
 * read (import spools them to a file). Semantics (sequence, counts, the archive hash) are the
 * caller's: it gets `archiveSoFar` with each record.
 */
export async function* readArchive(input: AsyncIterable<unknown>, onChunk: (chunk: Buffer) => Promise<void> = async () => {}): AsyncGenerator<ArchiveRecord> {
  const source = new ByteSource(input[Symbol.asyncIterator](), onChunk);
  const hash: Hash = archiveHash();
  // Anything that is not a short first line (binary, empty) is simply not an archive; I/O errors stay what they are.
  const magic = await source.line(MAX_LINE_BYTES).catch((error: unknown) => {
    if (error instanceof ArchiveError) return undefined;
    throw error;
  });
  const version = magic === undefined ? undefined : MAGIC_LINE.exec(magic)?.[1];
  if (version === undefined) throw new ArchiveError('not-an-archive', 'not a lighthouse-bridge archive: it does not start with the "lighthouse-bridge-archive" line');
  if (Number(version) !== ARCHIVE_VERSION) {
    throw new ArchiveError('version', `archive format version ${version} is not supported: this lighthouse-bridge reads version ${ARCHIVE_VERSION}`);
  }
  hash.update(`${magic}\n`);
  for (;;) {
    const at = source.offset;
    const line = await source.line(MAX_LINE_BYTES);
    if (line === undefined) throw new ArchiveError('truncated', `archive truncated at byte ${at}: it ends without its trailer`);
    const m = RECORD_LINE.exec(line);
    if (!m) throw new ArchiveError('tampered', `archive damaged at byte ${at}: "${line.slice(0, 40)}" is not a record line`);
    const kind = m[1] as RecordKind;
    const length = Number(m[2]);
    if (length > MAX_RECORD_BYTES) throw new ArchiveError('tampered', `archive damaged at byte ${at}: a ${length}-byte record is larger than any archive holds`);
    const archiveSoFar = hash.copy().digest('hex');
    hash.update(`${line}\n`);
    const body = await source.take(length + 1);
    if (body.length < length + 1) throw new ArchiveError('truncated', `archive truncated at byte ${source.offset}: it ends inside a ${kind} record of ${length} bytes`);
    if (body[length] !== 0x0a) throw new ArchiveError('tampered', `archive damaged at byte ${at}: the ${kind} record is not ${length} bytes long`);
    const content = body.subarray(0, length);
    if (contentHash(content) !== m[3]) throw new ArchiveError('tampered', `archive tampered: the sha256 of the ${kind} record at byte ${at} does not match its content`);
    if (kind === 'T' && !(await source.atEnd())) throw new ArchiveError('tampered', `archive damaged: bytes follow its trailer at byte ${source.offset}`);
    yield { kind, body: content, sha256: m[3]!, archiveSoFar };
    if (kind === 'T') return;
  }
}
