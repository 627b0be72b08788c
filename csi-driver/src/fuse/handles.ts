import { E, fsError } from './errno.js';
import type { WriteBudget } from './writeBudget.js';

/**
 * A copy of an open file's unrecorded content outside the process (custody, ADR 0083): a successor
 * taking over the mount restores the file from it, so bytes a write(2) was told landed are not lost
 * with the server. Written before the write is acknowledged.
 */
export interface ContentMirror {
  /** What names it to a successor (journaled with each handle of the file). */
  readonly name: string;
  write(source: Buffer, length: number, position: number): void;
  truncate(size: number): void;
  /** The file has no handle left: the copy is not needed any more. */
  discard(): void;
}

/** Makes a mirror holding `content` (only where something outlives the process: custody). */
export type MirrorFactory = (content: Buffer) => ContentMirror;

/**
 * The content of one file in `current/` while any handle has it open. Handles of the same path
 * share it, so a reader sees a writer's bytes before the close that records them, and the close
 * of the last dirty handle records ONE event however many write(2) calls came before.
 */
export class OpenFile {
  private data: Buffer;
  size: number;
  dirty = false;
  /** Set by utimens while open (cp -a, touch on an open file): recorded with the content. */
  mtimeMs: number | undefined;
  lastWriteMs: number;
  refs = 0;
  /** Unlinked or replaced while open: later writes go nowhere, as on a POSIX filesystem. */
  detached = false;
  /** Not yet in the projection: created through this mount and never recorded. */
  pending: boolean;
  private commitChain: Promise<void> = Promise.resolve();
  /** Set once a writer opens it: every later change is mirrored before it is acknowledged. */
  mirror: ContentMirror | undefined;

  /** Holds `content` against the mount's budget (ENOSPC when it has no room); `dispose` gives it back. */
  constructor(
    public path: string,
    content: Buffer,
    public mode: number,
    pending: boolean,
    private readonly budget: WriteBudget,
  ) {
    budget.reserve(content.length, path);
    this.data = content;
    this.size = content.length;
    this.pending = pending;
    this.lastWriteMs = Date.now();
    if (pending) this.dirty = true;
  }

  read(target: Buffer, length: number, position: number): number {
    if (position >= this.size) return 0;
    const end = Math.min(this.size, position + length);
    return this.data.copy(target, 0, position, end);
  }

  write(source: Buffer, length: number, position: number, maxBytes: number): number {
    const end = position + length;
    if (end > maxBytes) throw fsError(E.EFBIG, `file would exceed ${maxBytes} bytes`);
    this.ensureCapacity(end, maxBytes);
    source.copy(this.data, position, 0, length);
    this.mirror?.write(source, length, position);
    // A write past the end leaves a hole that reads as zeros; ensureCapacity zero-fills it.
    if (end > this.size) this.size = end;
    this.touch();
    return length;
  }

  truncate(size: number, maxBytes: number): void {
    if (size > maxBytes) throw fsError(E.EFBIG, `file would exceed ${maxBytes} bytes`);
    if (size > this.size) {
      this.ensureCapacity(size, maxBytes);
    } else {
      this.data.fill(0, size, this.size);
    }
    this.size = size;
    this.mirror?.truncate(size);
    this.touch();
  }

  /** A copy of the content, so writes during an in-flight commit cannot change what is hashed. */
  snapshot(): Buffer {
    return Buffer.from(this.data.subarray(0, this.size));
  }

  /**
   * Runs `record` when dirty, one commit at a time per file; resolves once the event is durable.
   * Writes that land while a commit is in flight make the file dirty again for the next close.
   */
  commit(record: (file: OpenFile, content: Buffer, mtimeMs: number) => Promise<void>): Promise<void> {
    const next = this.commitChain.then(async () => {
      if (!this.dirty || this.detached) return;
      this.dirty = false;
      const mtimeMs = this.mtimeMs ?? this.lastWriteMs;
      try {
        await record(this, this.snapshot(), mtimeMs);
        this.pending = false;
        this.mtimeMs = undefined;
      } catch (error) {
        this.dirty = true;
        throw error;
      }
    });
    this.commitChain = next.catch(() => undefined);
    return next;
  }

  private touch(): void {
    this.dirty = true;
    this.lastWriteMs = Date.now();
    this.mtimeMs = undefined;
  }

  /** The last handle is gone: the buffer's bytes go back to the mount's budget. */
  dispose(): void {
    this.mirror?.discard();
    this.mirror = undefined;
    this.budget.release(this.data.length);
    this.data = Buffer.alloc(0);
    this.size = 0;
  }

  private ensureCapacity(bytes: number, maxBytes: number): void {
    if (bytes <= this.data.length) {
      if (bytes > this.size) this.data.fill(0, this.size, bytes);
      return;
    }
    // Doubling keeps appends linear; never past the file limit, and only exactly what is needed when the budget is tight.
    const doubled = Math.min(Math.max(bytes, this.data.length * 2, 4096), Math.max(bytes, maxBytes));
    const capacity = this.budget.fits(doubled - this.data.length) ? doubled : bytes;
    this.budget.reserve(capacity - this.data.length, this.path);
    const grown = Buffer.alloc(capacity);
    this.data.copy(grown, 0, 0, this.size);
    this.data = grown;
  }
}

type Result<T> = T | Promise<T>;

/**
 * What the kernel may keep of a handle's reads in its page cache (ADR 0080): `direct` for content
 * generated per handle or per read (its size is unknown or changes under the reader), `keep` for
 * content that never changes (history), `page` for the rest, which the kernel drops at each open so
 * another mount's change is seen (close-to-open).
 */
export type KernelCache = 'direct' | 'keep' | 'page';

/**
 * One open file descriptor of the mount: each kind (a file in current/, a rendered document, a
 * stream, a request to the mount) answers the operations on a descriptor for itself.
 */
export interface Handle {
  readonly cache: KernelCache;
  /** False when flush never has anything to do: the kernel then sends no FLUSH at close. */
  readonly flushes: boolean;
  /** The mirror of the content it writes, when one outlives the process (custody). */
  readonly mirror?: string | undefined;
  read(target: Buffer, length: number, position: number): Result<number>;
  write(source: Buffer, length: number, position: number): number;
  truncate(size: number): void;
  /** close(2) of one descriptor: resolves once whatever it changed is durable. */
  flush(): Result<void>;
  /** fsync(2): an explicit request for durability. */
  fsync(): Result<void>;
  /** The last reference is gone (the kernel sends this after close has returned). */
  release(): Result<void>;
}

/** A handle nobody may write through; subclasses answer read. */
export abstract class ReadOnlyHandle implements Handle {
  abstract readonly cache: KernelCache;
  readonly flushes = false;
  abstract read(target: Buffer, length: number, position: number): Result<number>;

  write(): number {
    throw fsError(E.EBADF, 'handle is open for reading only');
  }

  truncate(): void {
    throw fsError(E.EBADF, 'handle is open for reading only');
  }

  flush(): void {}

  fsync(): void {}

  release(): Result<void> {}
}

/** Fixed content rendered or loaded at open: a blob of history, a manifest, a status document. */
export class BytesHandle extends ReadOnlyHandle {
  constructor(
    private readonly data: Buffer,
    readonly cache: KernelCache,
  ) {
    super();
  }

  read(target: Buffer, length: number, position: number): number {
    return copyAt(this.data, target, length, position);
  }
}

/** Copies up to `length` bytes of `data` from `position` into `target`. */
export function copyAt(data: Buffer, target: Buffer, length: number, position: number): number {
  if (position >= data.length) return 0;
  return data.copy(target, 0, position, Math.min(data.length, position + length));
}

/** File handle numbers to handles. 0 is never handed out, so a request's unset fh (0) never names one. */
export class HandleTable {
  private readonly handles = new Map<number, Handle>();
  private next = 1;

  /** A handle a predecessor gave out as `fd` (custody): the kernel keeps using that number. */
  put(fd: number, handle: Handle): void {
    this.handles.set(fd, handle);
    if (fd >= this.next) this.next = (fd + 1) >>> 0;
  }

  add(handle: Handle): number {
    while (this.handles.has(this.next) || this.next === 0) this.next = (this.next + 1) >>> 0;
    const fd = this.next;
    this.next = (this.next + 1) >>> 0;
    this.handles.set(fd, handle);
    return fd;
  }

  get(fd: number): Handle {
    const handle = this.handles.get(fd);
    if (!handle) throw fsError(E.EBADF, `no open handle ${fd}`);
    return handle;
  }

  remove(fd: number): Handle | undefined {
    const handle = this.handles.get(fd);
    this.handles.delete(fd);
    return handle;
  }

  get size(): number {
    return this.handles.size;
  }
}
