import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { RECORD_HEADER_BYTES, SEGMENT_MAGIC, parseRecord } from './recordCodec.js';
import { listSeqFiles, seqFileName } from './seqFiles.js';
import { CorruptLogError } from './storeErrors.js';

/** A sparse index entry every this many bytes: bounds memory and the bytes a read skips over. */
const INDEX_EVERY_BYTES = 64 * 1024;
const READ_CHUNK_BYTES = 256 * 1024;

/**
 * What memory holds about one segment file: where its valid records end and a sparse
 * seq → offset index. Events themselves stay on disk.
 */
export interface Segment {
  readonly firstSeq: number;
  readonly path: string;
  /** Offset just past the last valid (and, for the writer, durable) record; 0 = header unchecked. */
  end: number;
  /** `firstSeq - 1` while empty. */
  lastSeq: number;
  readonly indexSeqs: number[];
  readonly indexOffsets: number[];
}

export function newSegment(logDir: string, firstSeq: number): Segment {
  return { firstSeq, path: join(logDir, seqFileName(firstSeq, '.seg')), end: 0, lastSeq: firstSeq - 1, indexSeqs: [], indexOffsets: [] };
}

/** The first sequence numbers of the segment files in `logDir`, ascending; [] when it does not exist. */
export function listSegments(logDir: string): Promise<number[]> {
  return listSeqFiles(logDir, '.seg');
}

export function noteRecord(segment: Segment, firstSeq: number, count: number, offset: number, end: number): void {
  const last = segment.indexOffsets.at(-1);
  if (last === undefined || offset - last >= INDEX_EVERY_BYTES) {
    segment.indexSeqs.push(firstSeq);
    segment.indexOffsets.push(offset);
  }
  segment.lastSeq = firstSeq + count - 1;
  segment.end = end;
}

/** Where to start reading for `seq`: the greatest indexed record at or before it. */
export function offsetFor(segment: Segment, seq: number): number {
  let lo = 0;
  let hi = segment.indexSeqs.length - 1;
  let found = SEGMENT_MAGIC.length;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (segment.indexSeqs[mid]! <= seq) {
      found = segment.indexOffsets[mid]!;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

export type ScanEnd =
  | { kind: 'clean' }
  /** The file is shorter than the segment header (a crash while rolling). */
  | { kind: 'no-header' }
  /**
   * Bytes from `at` to `size` are not a valid next record: a torn tail or a write in flight when
   * `incomplete` (the record runs past the end of the file), else damage or a write mid-copy.
   */
  | { kind: 'bad'; at: number; size: number; reason: string; incomplete: boolean };

/**
 * Extends `segment` over the valid records found after its current `end`, checking checksums
 * and that sequence numbers continue. Stops at the first byte that is not a valid next record.
 */
export async function scanSegment(segment: Segment): Promise<ScanEnd> {
  const file = await open(segment.path, 'r');
  try {
    const size = (await file.stat()).size;
    if (segment.end === 0) {
      if (size < SEGMENT_MAGIC.length) return { kind: 'no-header' };
      const magic = Buffer.alloc(SEGMENT_MAGIC.length);
      await file.read(magic, 0, magic.length, 0);
      if (!magic.equals(SEGMENT_MAGIC)) throw new CorruptLogError(`${segment.path}: not a segment file (bad header)`);
      segment.end = SEGMENT_MAGIC.length;
    }
    let result: ScanEnd = { kind: 'clean' };
    await forEachRecord(file, segment.end, size, (record, offset) => {
      if (record.kind !== 'record') {
        result = { kind: 'bad', at: offset, size, reason: record.reason, incomplete: record.kind === 'incomplete' };
        return false;
      }
      if (record.firstSeq !== segment.lastSeq + 1) {
        throw new CorruptLogError(`${segment.path}: record at offset ${offset} has seq ${record.firstSeq}, expected ${segment.lastSeq + 1}`);
      }
      noteRecord(segment, record.firstSeq, record.count, offset, offset + record.length);
      return true;
    });
    return result;
  } finally {
    await file.close();
  }
}

export type VisitedRecord =
  | { kind: 'record'; firstSeq: number; count: number; /** Bytes the whole record takes in the file. */ length: number; payload: Buffer }
  | { kind: 'incomplete' | 'corrupt'; reason: string };

/**
 * Calls `visit` for each record in `[from, until)` of `file`, reading in chunks; `visit` returns
 * false to stop. A record that is not whole before `until` is visited as incomplete.
 */
export async function forEachRecord(
  file: FileHandle,
  from: number,
  until: number,
  visit: (record: VisitedRecord, offset: number) => boolean,
): Promise<void> {
  let buf = Buffer.alloc(0);
  let bufStart = from;
  for (;;) {
    let at = 0;
    for (;;) {
      const parsed = parseRecord(buf, at);
      if (parsed.kind === 'record') {
        const record = { kind: 'record' as const, firstSeq: parsed.firstSeq, count: parsed.count, length: parsed.end - at, payload: parsed.payload };
        if (!visit(record, bufStart + at)) return;
        at = parsed.end;
        continue;
      }
      if (parsed.kind === 'corrupt') {
        visit({ kind: 'corrupt', reason: parsed.reason }, bufStart + at);
        return;
      }
      break;
    }
    const consumedTo = bufStart + at;
    const readTo = bufStart + buf.length;
    if (readTo >= until) {
      if (consumedTo < until) visit({ kind: 'incomplete', reason: 'record runs past the end of the file' }, consumedTo);
      return;
    }
    const rest = buf.subarray(at);
    const wanted = rest.length >= RECORD_HEADER_BYTES ? RECORD_HEADER_BYTES + rest.readUInt32LE(0) - rest.length : 0;
    const length = Math.min(until - readTo, Math.max(READ_CHUNK_BYTES, wanted));
    const chunk = Buffer.allocUnsafe(length);
    const { bytesRead } = await file.read(chunk, 0, length, readTo);
    if (bytesRead === 0) {
      if (consumedTo < until) visit({ kind: 'incomplete', reason: 'file shorter than expected' }, consumedTo);
      return;
    }
    buf = rest.length > 0 ? Buffer.concat([rest, chunk.subarray(0, bytesRead)]) : chunk.subarray(0, bytesRead);
    bufStart = consumedTo;
  }
}
