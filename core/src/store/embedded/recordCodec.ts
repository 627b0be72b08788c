import { crc32 } from 'node:zlib';

/**
 * One record is one append: all its events or none, which is what makes multi-event appends
 * atomic across a crash. Layout (little endian):
 *
 *   u32 bodyLength | u32 crc32(body) | body = u64 firstSeq | u32 count | JSON payload
 *
 * The sequence numbers live in the binary header so the index can be rebuilt without parsing
 * JSON, and a record that claims the wrong sequence is caught as corruption.
 */
export const RECORD_HEADER_BYTES = 8;
const BODY_FIXED_BYTES = 12;
/** A length beyond this is garbage, not a record; bounds what a corrupt header can make us read. */
const MAX_RECORD_BYTES = 256 * 1024 * 1024;
/** A claimed event count beyond this is garbage: a record cannot hold that many events in MAX_RECORD_BYTES. */
const MAX_CLAIMED_EVENTS = Math.floor(MAX_RECORD_BYTES / 16);

/** Every segment file starts with this; the digit is the format version. */
export const SEGMENT_MAGIC = Buffer.from('LHBSEG1\n', 'latin1');

export function encodeRecord(firstSeq: number, count: number, payload: string): Buffer {
  const json = Buffer.from(payload, 'utf8');
  const record = Buffer.allocUnsafe(RECORD_HEADER_BYTES + BODY_FIXED_BYTES + json.length);
  record.writeUInt32LE(BODY_FIXED_BYTES + json.length, 0);
  record.writeBigUInt64LE(BigInt(firstSeq), 8);
  record.writeUInt32LE(count, 16);
  json.copy(record, RECORD_HEADER_BYTES + BODY_FIXED_BYTES);
  record.writeUInt32LE(crc32(record.subarray(RECORD_HEADER_BYTES)), 4);
  return record;
}

export type ParsedRecord =
  | { kind: 'record'; firstSeq: number; count: number; end: number; payload: Buffer }
  /** Not enough bytes yet: the end of what was read, or a write still in progress. */
  | { kind: 'incomplete' }
  | { kind: 'corrupt'; reason: string };

/** Parses the record starting at `offset` of `buf` (which may end mid-record). */
export function parseRecord(buf: Buffer, offset: number): ParsedRecord {
  if (buf.length - offset < RECORD_HEADER_BYTES) return { kind: 'incomplete' };
  const bodyLength = buf.readUInt32LE(offset);
  if (bodyLength < BODY_FIXED_BYTES || bodyLength > MAX_RECORD_BYTES) return { kind: 'corrupt', reason: `impossible record length ${bodyLength}` };
  const end = offset + RECORD_HEADER_BYTES + bodyLength;
  if (end > buf.length) return { kind: 'incomplete' };
  const body = buf.subarray(offset + RECORD_HEADER_BYTES, end);
  if (crc32(body) !== buf.readUInt32LE(offset + 4)) return { kind: 'corrupt', reason: 'checksum mismatch' };
  const firstSeq = Number(body.readBigUInt64LE(0));
  const count = body.readUInt32LE(8);
  if (count === 0 || !Number.isSafeInteger(firstSeq) || firstSeq < 1) return { kind: 'corrupt', reason: 'impossible sequence header' };
  return { kind: 'record', firstSeq, count, end, payload: body.subarray(BODY_FIXED_BYTES) };
}

/**
 * The highest sequence of a whole, checksummed record with a sequence after `afterSeq` starting
 * anywhere in `buf`, if any. Tells corruption in the middle of a log (acknowledged data follows)
 * from a damaged tail (nothing valid follows), and how far a cut reaches.
 */
export function lastValidSeq(buf: Buffer, afterSeq: number): number | undefined {
  let last: number | undefined;
  for (let at = 0; at + RECORD_HEADER_BYTES + BODY_FIXED_BYTES <= buf.length; at++) {
    const bodyLength = buf.readUInt32LE(at);
    if (bodyLength < BODY_FIXED_BYTES || at + RECORD_HEADER_BYTES + bodyLength > buf.length) continue;
    const seq = Number(buf.readBigUInt64LE(at + RECORD_HEADER_BYTES));
    if (seq <= afterSeq) continue;
    const parsed = parseRecord(buf, at);
    if (parsed.kind === 'record') last = Math.max(last ?? 0, parsed.firstSeq + parsed.count - 1);
  }
  return last;
}

/**
 * The sequence numbers the (unverified) header at the start of `buf` claims, when it is there and
 * plausibly the record expected next: what a damaged or torn last append may have handed out.
 */
export function claimedSeqs(buf: Buffer, expectedFirst: number): { first: number; count: number } | undefined {
  if (buf.length < RECORD_HEADER_BYTES + BODY_FIXED_BYTES) return undefined;
  const first = Number(buf.readBigUInt64LE(RECORD_HEADER_BYTES));
  const count = buf.readUInt32LE(RECORD_HEADER_BYTES + 8);
  // A record holds at most one append; the workspace's appends are far below this many events.
  return first === expectedFirst && count >= 1 && count <= MAX_CLAIMED_EVENTS ? { first, count } : undefined;
}
