import type { FuseStat, FuseStatfs } from '../attributes.js';
import { E, fsError } from '../errno.js';
import { ATTR, ATTR_OUT, DIRENT_HEADER, ENTRY_OUT, IN_HEADER, OPEN_OUT, OUT_HEADER, STATFS_OUT } from './protocol.js';

const TWO_32 = 2 ** 32;
/** Names must be UTF-8: a lossy decode would make two different byte strings one path. */
const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** A 64-bit field as a number: node ids, handles and offsets stay far below 2^53. */
export function u64(buffer: Buffer, at: number): number {
  return buffer.readUInt32LE(at) + buffer.readUInt32LE(at + 4) * TWO_32;
}

function writeU64(buffer: Buffer, value: number, at: number): void {
  buffer.writeUInt32LE(value % TWO_32 >>> 0, at);
  buffer.writeUInt32LE(Math.floor(value / TWO_32) >>> 0, at + 4);
}

/** One request as read from /dev/fuse: the header's fields and its body. */
export class Request {
  readonly opcode: number;
  readonly nodeId: number;
  /** The body after the 40-byte header. */
  readonly body: Buffer;

  constructor(readonly raw: Buffer) {
    this.opcode = raw.readUInt32LE(4);
    this.nodeId = u64(raw, 16);
    this.body = raw.subarray(IN_HEADER);
  }

  get uid(): number {
    return this.raw.readUInt32LE(32);
  }

  /** The NUL-terminated name starting at `at` in the body, and where the next field begins. */
  name(at = 0): { name: string; next: number } {
    const end = this.body.indexOf(0, at);
    if (end < 0) throw new RangeError('name without a terminating NUL');
    let name: string;
    try {
      name = UTF8.decode(this.body.subarray(at, end));
    } catch {
      throw fsError(E.EINVAL, 'file names must be UTF-8');
    }
    return { name, next: end + 1 };
  }

  /** A reply to this request with `bodyBytes` of body, header filled in (unique copied raw, so resent requests keep theirs). */
  reply(bodyBytes: number): Buffer {
    const out = Buffer.allocUnsafe(OUT_HEADER + bodyBytes);
    out.writeUInt32LE(out.length, 0);
    out.writeInt32LE(0, 4);
    this.raw.copy(out, 8, 8, 16);
    return out;
  }

  /** An error reply: `errno` negative, as FUSE wants it. */
  error(errno: number): Buffer {
    const out = this.reply(0);
    out.writeInt32LE(errno, 4);
    return out;
  }
}

/** Seconds as the (seconds, nanoseconds) pair the kernel's timeouts and times use. */
function seconds(value: number): { s: number; ns: number } {
  const s = Math.floor(value);
  return { s, ns: Math.round((value - s) * 1e9) };
}

function writeTime(out: Buffer, ms: number, secAt: number, nsecAt: number): void {
  const s = Math.floor(ms / 1000);
  writeU64(out, Math.max(0, s), secAt);
  out.writeUInt32LE(Math.max(0, Math.round((ms - s * 1000) * 1e6)) % 1e9, nsecAt);
}

/** struct fuse_attr at `at`. */
export function writeAttr(out: Buffer, at: number, ino: number, stat: FuseStat): void {
  out.fill(0, at, at + ATTR);
  writeU64(out, ino, at);
  writeU64(out, stat.size, at + 8);
  writeU64(out, stat.blocks ?? Math.ceil(stat.size / 512), at + 16);
  writeTime(out, stat.atime, at + 24, at + 48);
  writeTime(out, stat.mtime, at + 32, at + 52);
  writeTime(out, stat.ctime, at + 40, at + 56);
  out.writeUInt32LE(stat.mode >>> 0, at + 60);
  out.writeUInt32LE(stat.nlink, at + 64);
  out.writeUInt32LE(stat.uid, at + 68);
  out.writeUInt32LE(stat.gid, at + 72);
  out.writeUInt32LE(stat.blksize ?? 4096, at + 80);
}

function writeValid(out: Buffer, timeout: number, secAt: number, nsecAt: number): void {
  const { s, ns } = seconds(timeout);
  writeU64(out, s, secAt);
  out.writeUInt32LE(ns, nsecAt);
}

/** fuse_entry_out at `at`: a name resolved to `nodeId` (0: "does not exist", cached for entryTimeout). */
export function writeEntry(out: Buffer, at: number, nodeId: number, stat: FuseStat | undefined, entryTimeout: number, attrTimeout: number): void {
  out.fill(0, at, at + ENTRY_OUT);
  writeU64(out, nodeId, at);
  writeValid(out, entryTimeout, at + 16, at + 32);
  if (!stat) return;
  writeValid(out, attrTimeout, at + 24, at + 36);
  writeAttr(out, at + 40, nodeId, stat);
}

export function entryReply(request: Request, nodeId: number, stat: FuseStat | undefined, entryTimeout: number, attrTimeout: number): Buffer {
  const out = request.reply(ENTRY_OUT);
  writeEntry(out, OUT_HEADER, nodeId, stat, entryTimeout, attrTimeout);
  return out;
}

export function attrReply(request: Request, nodeId: number, stat: FuseStat, attrTimeout: number): Buffer {
  const out = request.reply(ATTR_OUT);
  out.fill(0, OUT_HEADER, OUT_HEADER + 16);
  writeValid(out, attrTimeout, OUT_HEADER, OUT_HEADER + 8);
  writeAttr(out, OUT_HEADER + 16, nodeId, stat);
  return out;
}

export function writeOpen(out: Buffer, at: number, fh: number, flags: number): void {
  out.fill(0, at, at + OPEN_OUT);
  writeU64(out, fh, at);
  out.writeUInt32LE(flags, at + 8);
}

export function openReply(request: Request, fh: number, flags: number): Buffer {
  const out = request.reply(OPEN_OUT);
  writeOpen(out, OUT_HEADER, fh, flags);
  return out;
}

export function statfsReply(request: Request, st: FuseStatfs): Buffer {
  const out = request.reply(STATFS_OUT);
  const at = OUT_HEADER;
  out.fill(0, at, at + STATFS_OUT);
  writeU64(out, st.blocks, at);
  writeU64(out, st.bfree, at + 8);
  writeU64(out, st.bavail, at + 16);
  writeU64(out, st.files, at + 24);
  writeU64(out, st.ffree, at + 32);
  out.writeUInt32LE(st.bsize, at + 40);
  out.writeUInt32LE(st.namemax, at + 44);
  out.writeUInt32LE(st.frsize, at + 48);
  return out;
}

export function writeCountReply(request: Request, count: number): Buffer {
  const out = request.reply(8);
  out.writeUInt32LE(count, OUT_HEADER);
  out.writeUInt32LE(0, OUT_HEADER + 4);
  return out;
}

export function bytesReply(request: Request, data: Buffer): Buffer {
  const out = request.reply(data.length);
  data.copy(out, OUT_HEADER);
  return out;
}

/** The kernel's "type unknown": readdir does not stat every entry; callers that care ask (git does). */
const DT_UNKNOWN = 0;
/** What libfuse shows as d_ino when it does not know the inode: it must not be 0 (readdir(3) skips those). */
const UNKNOWN_INO = 0xffffffff;

function direntLength(nameBytes: number, entryBytes: number): number {
  return (entryBytes + DIRENT_HEADER + nameBytes + 7) & ~7;
}

/** struct fuse_dirent at `at`; `next` is the offset the kernel passes back to continue after it. */
function writeDirent(out: Buffer, at: number, ino: number, next: number, type: number, name: Buffer): void {
  writeU64(out, ino, at);
  writeU64(out, next, at + 8);
  out.writeUInt32LE(name.length, at + 16);
  out.writeUInt32LE(type, at + 20);
  name.copy(out, at + DIRENT_HEADER);
  out.fill(0, at + DIRENT_HEADER + name.length, at + direntLength(name.length, 0));
}

/** One name of a listing, from `index` (its offset) on, in the bytes it takes. */
export interface ListedName {
  index: number;
  name: Buffer;
}

/**
 * The names of `names` from index `offset` on that fit in `size` bytes of records, each record
 * `entryBytes` (a fuse_entry_out for READDIRPLUS, else none) plus its fuse_dirent.
 */
export function fittingNames(names: readonly string[], offset: number, size: number, entryBytes: number): ListedName[] {
  const fitting: ListedName[] = [];
  let used = 0;
  for (let i = offset; i < names.length; i++) {
    const name = Buffer.from(names[i]!, 'utf8');
    used += direntLength(name.length, entryBytes);
    if (used > size) break;
    fitting.push({ index: i, name });
  }
  return fitting;
}

/**
 * fuse_dirent records for the names that fit (`fittingNames` with no entry part); each record's
 * `off` is the index of the next, which is what the kernel passes back to continue.
 */
export function direntsReply(request: Request, names: readonly ListedName[]): Buffer {
  const out = request.reply(names.reduce((sum, { name }) => sum + direntLength(name.length, 0), 0));
  let at = OUT_HEADER;
  for (const { index, name } of names) {
    writeDirent(out, at, UNKNOWN_INO, index + 1, DT_UNKNOWN, name);
    at += direntLength(name.length, 0);
  }
  return out;
}

/** A name of a READDIRPLUS listing with what the kernel may keep of it; node 0 gives the name alone. */
export interface ListedEntry extends ListedName {
  nodeId: number;
  stat: FuseStat | undefined;
}

/**
 * fuse_direntplus records: each name with its entry (node id and attributes), which the kernel
 * links into its caches as if the name had been looked up, so stat, open and unlink of a listed
 * name need no LOOKUP of their own while the entry is valid.
 */
export function direntplusReply(request: Request, entries: readonly ListedEntry[], entryTimeout: number, attrTimeout: number): Buffer {
  const out = request.reply(entries.reduce((sum, { name }) => sum + direntLength(name.length, ENTRY_OUT), 0));
  let at = OUT_HEADER;
  for (const { index, name, nodeId, stat } of entries) {
    const linked = nodeId !== 0 && stat !== undefined;
    if (linked) writeEntry(out, at, nodeId, stat, entryTimeout, attrTimeout);
    else writeEntry(out, at, 0, undefined, 0, 0);
    writeDirent(out, at + ENTRY_OUT, linked ? nodeId : UNKNOWN_INO, index + 1, linked ? (stat.mode >>> 12) & 0o17 : DT_UNKNOWN, name);
    at += direntLength(name.length, ENTRY_OUT);
  }
  return out;
}
