import type { FuseStat } from '../attributes.js';
import type { ProjectWorkspace, RecordedEvent } from '@lighthouse-bridge/core';
import { E, fsError } from '../errno.js';
import { ReadOnlyHandle, type Handle } from '../handles.js';
import { STREAM_ENTRIES, type At } from '../layout.js';
import { renderLogLine } from '../renderers.js';
import type { Stats } from './stats.js';
import type { Result, View } from './view.js';

/** A blocked read of streams/events answers at least this often (see ADR 0041). */
const HEARTBEAT_MS = 1000;
/**
 * Event lines queued for one streams/events reader that is not reading. Past this the backlog is
 * dropped for one overflow line: the reader catches up from history/log, memory stays bounded.
 */
const MAX_STREAM_BACKLOG = 1024 * 1024;

type StreamsAt = At<'streamsDir' | 'streamEvents'>;

/** `streams/events`: every event from the open on, as JSON lines; a read blocks until there is one. */
export class StreamsView implements View<StreamsAt> {
  private readonly readers = new Set<StreamHandle>();
  private readonly stopEvents: () => void;
  private closed = false;

  constructor(
    private readonly workspace: ProjectWorkspace,
    private readonly stats: Stats,
  ) {
    this.stopEvents = workspace.onEvents((events) => this.feed(events));
  }

  get readerCount(): number {
    return this.readers.size;
  }

  getattr(at: StreamsAt): FuseStat {
    return at.view === 'streamsDir' ? this.stats.dir(0o555) : this.stats.file(0o444, 0, Date.now());
  }

  readdir(at: StreamsAt): string[] {
    if (at.view !== 'streamsDir') throw fsError(E.ENOTDIR, 'streams/events is not a directory');
    return [...STREAM_ENTRIES];
  }

  open(at: StreamsAt): Handle {
    if (at.view === 'streamsDir') throw fsError(E.EISDIR, 'streams is a directory');
    const reader = new StreamHandle(this);
    this.readers.add(reader);
    return reader;
  }

  /** Ends blocked reads so the FUSE threads can finish before unmount. */
  close(): void {
    this.closed = true;
    this.stopEvents();
    for (const reader of this.readers) reader.wake();
  }

  get ended(): boolean {
    return this.closed;
  }

  get head(): number {
    return this.workspace.head;
  }

  remove(reader: StreamHandle): void {
    this.readers.delete(reader);
  }

  private feed(events: RecordedEvent[]): void {
    if (this.readers.size === 0) return;
    const chunk = Buffer.from(events.map(renderLogLine).join(''));
    const head = events[events.length - 1]?.seq ?? this.workspace.head;
    for (const reader of this.readers) reader.offer(chunk, head);
  }
}

/** One reader of streams/events: `pendingBytes` is the size of `pending`, which is bounded. */
class StreamHandle extends ReadOnlyHandle {
  // Every read must reach us, and block until there is something to answer.
  readonly cache = 'direct';
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private waiter: (() => void) | undefined;
  private closed = false;

  constructor(private readonly view: StreamsView) {
    super();
  }

  read(target: Buffer, length: number): Result<number> {
    if (this.pending.length > 0 || this.closed || this.view.ended) return this.drain(target, length);
    return new Promise<number>((resolve) => {
      const timer = setTimeout(() => {
        // The session does not act on FUSE INTERRUPT, so a reader killed mid-read waits for our answer: keep it short.
        if (this.pending.length === 0) this.enqueue(Buffer.from(`${JSON.stringify({ heartbeat: true, head: this.view.head })}\n`));
        this.wake();
      }, HEARTBEAT_MS);
      this.waiter = () => {
        clearTimeout(timer);
        resolve(this.drain(target, length));
      };
    });
  }

  override release(): void {
    this.closed = true;
    this.view.remove(this);
    this.wake();
  }

  /** Queues `chunk`, or one overflow line in place of the whole backlog when the reader has fallen too far behind. */
  offer(chunk: Buffer, head: number): void {
    if (this.pendingBytes + chunk.length <= MAX_STREAM_BACKLOG) {
      this.enqueue(chunk);
    } else {
      this.pending = [];
      this.pendingBytes = 0;
      this.enqueue(Buffer.from(`${JSON.stringify({ overflow: true, head })}\n`));
    }
    this.wake();
  }

  wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }

  private enqueue(chunk: Buffer): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
  }

  /** Moves up to `length` queued bytes into `target`; the rest stays queued for the next read. */
  private drain(target: Buffer, length: number): number {
    const { pending } = this;
    let written = 0;
    while (written < length && pending.length > 0) {
      const head = pending[0]!;
      const n = head.copy(target, written, 0, Math.min(head.length, length - written));
      written += n;
      if (n === head.length) pending.shift();
      else pending[0] = head.subarray(n);
    }
    this.pendingBytes -= written;
    return written;
  }
}
