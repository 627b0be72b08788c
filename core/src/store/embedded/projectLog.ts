import { existsSync, watch, type FSWatcher } from 'node:fs';
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { NewEvent, RecordedEvent } from '../../events/events.js';
import { createLogger, type Logger } from '../../observability/logger.js';
import { ConcurrencyError, StoreUnavailableError } from '../eventStore.js';
import { fsyncDir, writeFileAtomic } from '../../fs/atomicFile.js';
import { syncFiles } from '../../fs/syncFiles.js';
import { writeAllAt } from '../../fs/writeAllAt.js';
import { SEGMENT_MAGIC, claimedSeqs, encodeRecord, lastValidSeq } from './recordCodec.js';
import { forEachRecord, listSegments, newSegment, noteRecord, offsetFor, scanSegment, type Segment } from './segmentFile.js';
import { CorruptLogError, asStoreError, io } from './storeErrors.js';
import { acquireWriterLock, type WriterLock } from './writerLock.js';

export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
/**
 * With nobody waiting, written records are synced this long after the first of them: each fsync
 * forces a journal commit that stalls every create and rename in the store meanwhile, so they are
 * gathered (ext4 itself commits every 5 s). fsync(2) and durable appends never wait for this.
 */
const BACKGROUND_SYNC_MS = 50;
/** Events kept in memory for this process's own tails (see `recent`). */
const RECENT_EVENTS = 4096;
/** Batches up to this size are written synchronously: a page-cache copy, cheaper than a thread hop. */
const SMALL_WRITE_BYTES = 64 * 1024;
/** Readers in other processes poll this often when no fs.watch is possible (not even the store's directory exists). */
const POLL_MS = 20;
/** And this often as a safety net when fs.watch is on (it can miss events on some filesystems). */
const WATCHED_POLL_MS = 250;
/** A reader that finds a damaged-looking tail looks again after this long before calling it damage: a write may be mid-copy. */
const RECHECK_MS = 50;

let storeLogger: Logger | undefined;
function logger(): Logger {
  storeLogger ??= createLogger('embedded-store');
  return storeLogger;
}

/** What a cut removed from the end of the log, and the sequence numbers now recorded as lost. */
export interface CutReport {
  readonly file: string;
  readonly offset: number;
  readonly bytes: number;
  readonly reason: string;
  /** Where the cut bytes were kept. */
  readonly savedAs: string;
  readonly lostSeqs: { readonly first: number; readonly last: number };
}

/** Bytes at the end of the last segment that are not valid records. */
interface Damage {
  readonly segment: Segment;
  readonly at: number;
  readonly tail: Buffer;
  readonly reason: string;
  /** A record cut short by the end of the file (or zeros to the end): what a crash leaves. Anything else is damage. */
  readonly torn: boolean;
}

/** Process-wide group commit counters: appends per fsync is the figure that shows batching works. */
export const groupCommitStats = { batches: 0, appends: 0 };

interface PendingAppend {
  readonly record: Buffer;
  readonly firstSeq: number;
  readonly count: number;
  /** Resolve once fdatasync'd, not as soon as written. */
  readonly durable: boolean;
  /** The events as read() returns them. */
  readonly events: RecordedEvent[];
  resolve(): void;
  reject(error: Error): void;
}

/** Someone waiting for every event up to `seq` to be durable. */
interface SyncWaiter {
  readonly seq: number;
  resolve(): void;
  reject(error: Error): void;
}

/** The state of the process that holds the project's writer lock. */
interface Writer {
  readonly lock: WriterLock;
  file: FileHandle;
  segment: Segment;
  /** Where the next batch is written: the writer's own, so no scan can move it. */
  end: number;
  /** The seq the next append gets: the head plus appends queued but not yet durable. */
  nextSeq: number;
  lastTimeMs: number;
  queue: PendingAppend[];
  flushing: boolean;
  /** The last seq written to the file (visible to every reader) and the last one fdatasync'd. */
  writtenSeq: number;
  syncedSeq: number;
  syncWaiters: SyncWaiter[];
  /** fdatasyncs run one at a time, each after the previous; `syncQueued` while one waits its turn. */
  syncChain: Promise<void>;
  syncQueued: boolean;
  /** A sync nobody waits for yet, due after BACKGROUND_SYNC_MS. */
  syncTimer?: NodeJS.Timeout;
  /** After a failed write or fsync the log's state on disk is unknown: refuse until reopened. */
  broken?: Error;
  idle: Array<() => void>;
}

interface Payload {
  t: string;
  e: readonly NewEvent[];
}

/**
 * One project's event log in one process: segment files under `<projectDir>/log/`, a sparse
 * index in memory, and, once this process appends, the writer lock and the group commit queue.
 * Shared by every store in the process that opens the project (see projectRegistry).
 */
export class ProjectLog {
  private readonly logDir: string;
  private readonly segments: Segment[] = [];
  private headSeq = 0;
  private writer?: Writer;
  private writerReady?: Promise<Writer>;
  /** Serializes scans of the files, which extend `segments`, with the hand-over to a writer. */
  private scanning: Promise<void> = Promise.resolve();
  /** Segments before this one were scanned whole and have successors, so they never change again. */
  private firstUnsealed = 0;
  private readonly listeners = new Set<() => void>();
  /** Blob files stored without fsync since the last sync: made durable before the log is. */
  private readonly unsyncedBlobs = new Set<string>();
  /**
   * The events this process wrote last, dense up to the head: every workspace of the project in
   * this process follows the log, and would otherwise read back from the file what it just wrote.
   */
  private recent: RecordedEvent[] = [];
  private watcher?: FSWatcher;
  /** What `watcher` watches: the log dir, or the nearest existing directory above it. */
  private watchedDir?: string;
  private pollTimer?: NodeJS.Timeout;
  private pollPace?: number;
  private closed = false;

  constructor(
    private readonly projectDir: string,
    private readonly label: string,
    private readonly segmentBytes: number,
    /** Settles when an earlier instance for the same project in this process has let go of its files. */
    private readonly previousClosed: Promise<void> = Promise.resolve(),
  ) {
    this.logDir = join(projectDir, 'log');
  }

  /** The durable head. Picks up what writers in other processes appended. */
  async head(): Promise<number> {
    await this.refresh();
    return this.headSeq;
  }

  async read(from: number, to: number, limit: number): Promise<RecordedEvent[]> {
    await this.refresh();
    return this.readKnown(from, to, limit);
  }

  /** Takes the writer lock just long enough to cut off whatever damage ends the log, recording the cut. */
  async repair(): Promise<CutReport | undefined> {
    if (this.writerReady) throw new StoreUnavailableError(`project ${this.label} is open for writing in this process; repair it from its own`);
    await this.previousClosed;
    const lock = await acquireWriterLock(join(this.projectDir, 'writer.lock'), this.label);
    try {
      return await this.exclusive(async () => {
        const damage = await this.scan('repair');
        return damage ? this.cut(damage) : undefined;
      });
    } finally {
      await lock.release();
    }
  }

  private async readKnown(from: number, to: number, limit: number): Promise<RecordedEvent[]> {
    const last = Math.min(to, this.headSeq);
    const out: RecordedEvent[] = [];
    if (from > last || limit <= 0) return out;
    const first = this.recent[0]?.seq;
    if (first !== undefined && from >= first) return this.recent.slice(from - first, Math.min(last - first + 1, from - first + limit));
    let i = this.segmentIndexFor(from);
    for (; i < this.segments.length && out.length < limit; i++) {
      const segment = this.segments[i]!;
      if (segment.firstSeq > last) break;
      if (segment.lastSeq < from) continue;
      const until = segment.end;
      await io(`reading ${segment.path}`, async () => {
        const file = await open(segment.path, 'r');
        try {
          await forEachRecord(file, offsetFor(segment, from), until, (record) => {
            if (record.kind !== 'record') throw new CorruptLogError(`${segment.path}: ${record.reason} below the known end`);
            if (record.firstSeq + record.count <= from) return true;
            const payload = JSON.parse(record.payload.toString('utf8')) as Payload;
            for (let k = 0; k < record.count; k++) {
              const seq = record.firstSeq + k;
              if (seq < from) continue;
              if (seq > last || out.length >= limit) return false;
              out.push({ ...payload.e[k]!, seq, time: payload.t });
            }
            return true;
          });
        } finally {
          await file.close();
        }
      });
    }
    return out;
  }

  /**
   * Appends atomically. `durable`: resolves once the record is fdatasync'd (one fdatasync shared
   * with concurrent appends); else once it is written to the segment file, where every reader in
   * every process sees it and a kill -9 of this process cannot lose it, with its fdatasync already
   * under way (ADR 0081). Records reach the file in seq order either way, so the log on disk is
   * always a prefix of what was appended.
   */
  async append(events: readonly NewEvent[], expectedVersion: number | undefined, givenTimeMs?: number, durable = true): Promise<RecordedEvent[]> {
    const writer = await this.ensureWriter();
    if (writer.broken) throw writer.broken;
    const current = writer.nextSeq - 1;
    if (expectedVersion !== undefined && expectedVersion !== current) throw new ConcurrencyError(expectedVersion, current);
    if (events.length === 0) return [];

    // Never before the previous event, even when given (an import): "state at instant T" must be well defined along seq.
    const timeMs = Math.max(givenTimeMs ?? Date.now(), writer.lastTimeMs);
    const time = new Date(timeMs).toISOString();
    const payload = JSON.stringify({ t: time, e: events } satisfies Payload);
    const firstSeq = writer.nextSeq;
    const record = encodeRecord(firstSeq, events.length, payload);
    writer.nextSeq += events.length;
    writer.lastTimeMs = timeMs;
    // What read() will return, so a caller never sees a difference (e.g. undefined fields dropped).
    const stored = (JSON.parse(payload) as Payload).e;
    const recorded = stored.map((e, k): RecordedEvent => ({ ...e, seq: firstSeq + k, time }));

    return new Promise<RecordedEvent[]>((resolve, reject) => {
      writer.queue.push({ record, firstSeq, count: events.length, durable, events: recorded, resolve: () => resolve(recorded), reject });
      this.startFlushing(writer);
    });
  }

  /** Resolves once everything appended in this process before the call is durable (fsync(2) of the mount). */
  async sync(): Promise<void> {
    const writer = this.writer ?? (await this.writerReady?.catch(() => undefined));
    if (!writer) return syncFiles(this.takeUnsyncedBlobs());
    if (writer.broken) throw writer.broken;
    const seq = writer.nextSeq - 1;
    if (seq <= writer.syncedSeq) return;
    await new Promise<void>((resolve, reject) => {
      writer.syncWaiters.push({ seq, resolve, reject });
      if (seq <= writer.writtenSeq) this.requestSync(writer);
    });
  }

  /** A blob file or pack written without fsync: the next sync makes it durable before any log record. */
  noteUnsyncedBlob(path: string): void {
    this.unsyncedBlobs.add(path);
  }

  private takeUnsyncedBlobs(): string[] {
    const paths = [...this.unsyncedBlobs];
    this.unsyncedBlobs.clear();
    return paths;
  }

  private startFlushing(writer: Writer): void {
    if (writer.flushing) return;
    writer.flushing = true;
    // Appends issued in the same run of microtasks join the first batch; no need to wait for the
    // next turn of the event loop (~100 µs here): the sync stage groups the fsyncs (ADR 0082).
    queueMicrotask(() => void this.flush(writer));
  }

  /** Calls `listener` (no arguments) whenever the head may have moved. */
  watch(listener: () => void): () => void {
    this.listeners.add(listener);
    this.updateWatching();
    return () => {
      this.listeners.delete(listener);
      this.updateWatching();
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    this.updateWatching();
    const writer = this.writer ?? (await this.writerReady?.catch(() => undefined));
    if (!writer) return syncFiles(this.takeUnsyncedBlobs()).catch(() => undefined);
    if (writer.flushing) await new Promise<void>((resolve) => writer.idle.push(resolve));
    // Unmount and exit make everything durable, like fsync.
    await this.syncNow(writer).catch(() => undefined);
    await writer.file.close().catch(() => undefined);
    await writer.lock.release();
  }

  /**
   * The write stage: one write per batch, in seq order. It never waits for an fdatasync, so a batch
   * is written while the previous one is being synced; the sync stage (syncNow) catches up with
   * whatever was written when it starts: the group commit.
   */
  private async flush(writer: Writer): Promise<void> {
    while (writer.queue.length > 0 && !writer.broken) {
      const batch = writer.queue.splice(0);
      try {
        await this.writeBatch(writer, batch);
      } catch (error) {
        this.breakWriter(writer, error);
        for (const pending of batch) pending.reject(writer.broken!);
        break;
      }
      for (const pending of batch) {
        if (pending.durable) writer.syncWaiters.push({ seq: pending.firstSeq + pending.count - 1, resolve: pending.resolve, reject: pending.reject });
        else pending.resolve();
      }
      groupCommitStats.appends += batch.length;
      if (writer.syncWaiters.length > 0) this.requestSync(writer);
      else writer.syncTimer ??= setTimeout(() => this.requestSync(writer), BACKGROUND_SYNC_MS).unref();
      this.notify();
    }
    if (writer.broken) for (const pending of writer.queue.splice(0)) pending.reject(writer.broken);
    writer.flushing = false;
    for (const done of writer.idle.splice(0)) done();
  }

  /** Queues one fdatasync after the one in flight, unless one is already waiting (it will cover this). */
  private requestSync(writer: Writer): void {
    if (writer.syncQueued) return;
    writer.syncQueued = true;
    void this.syncNow(writer).catch(() => undefined);
  }

  /**
   * The sync stage: makes everything written so far durable (the blobs stored for it first, then
   * the log), and settles whoever waits for that. Failures break the writer: after a failed
   * fdatasync nothing is known about what reached the disk.
   */
  private syncNow(writer: Writer): Promise<void> {
    const run = writer.syncChain.then(async () => {
      writer.syncQueued = false;
      clearTimeout(writer.syncTimer);
      writer.syncTimer = undefined;
      if (writer.broken) throw writer.broken;
      const upTo = writer.writtenSeq;
      const blobs = this.takeUnsyncedBlobs();
      if (upTo <= writer.syncedSeq && blobs.length === 0) return;
      try {
        // Records written from here on may reach the disk with the datasync below before their
        // blobs do (the next sync takes those): the power-cut window of ADR 0088.
        await syncFiles(blobs);
        // The file records up to `upTo` are in: a roll swaps it only after a sync chained behind this one.
        await writer.file.datasync();
      } catch (error) {
        this.breakWriter(writer, error);
        throw writer.broken;
      }
      groupCommitStats.batches++;
      writer.syncedSeq = Math.max(writer.syncedSeq, upTo);
      const waiting = writer.syncWaiters;
      writer.syncWaiters = waiting.filter((w) => w.seq > writer.syncedSeq);
      for (const w of waiting) if (w.seq <= writer.syncedSeq) w.resolve();
      // A waiter for seqs written after this sync started needs the next one.
      if (writer.syncWaiters.some((w) => w.seq <= writer.writtenSeq)) this.requestSync(writer);
    });
    writer.syncChain = run.catch(() => undefined);
    return run;
  }

  private breakWriter(writer: Writer, error: unknown): void {
    writer.broken ??= asStoreError(`appending to ${this.label}`, error);
    for (const w of writer.syncWaiters.splice(0)) w.reject(writer.broken);
  }

  /** One write for the whole batch; its fdatasync is the sync stage's. */
  private async writeBatch(writer: Writer, batch: PendingAppend[]): Promise<void> {
    const bytes = batch.reduce((n, p) => n + p.record.length, 0);
    if (writer.segment.end > SEGMENT_MAGIC.length && writer.segment.end + bytes > this.segmentBytes) {
      await this.roll(writer, batch[0]!.firstSeq);
    }
    const segment = writer.segment;
    const start = writer.end;
    const buf = batch.length === 1 ? batch[0]!.record : Buffer.concat(batch.map((p) => p.record), bytes);
    // A small batch goes to the page cache without a thread-pool round trip (ADR 0082).
    if (bytes <= SMALL_WRITE_BYTES) writeAllAt(writer.file.fd, buf, start);
    else await writeAll(writer.file, buf, start);
    let offset = start;
    for (const pending of batch) {
      noteRecord(segment, pending.firstSeq, pending.count, offset, offset + pending.record.length);
      offset += pending.record.length;
      this.recent.push(...pending.events);
    }
    if (this.recent.length > 2 * RECENT_EVENTS) this.recent = this.recent.slice(-RECENT_EVENTS);
    writer.end = offset;
    this.headSeq = segment.lastSeq;
    writer.writtenSeq = segment.lastSeq;
  }

  private async roll(writer: Writer, firstSeq: number): Promise<void> {
    const segment = await this.createSegment(firstSeq);
    const file = await open(segment.path, 'r+');
    // Everything in the old segment is durable before it is let go. The swap is a link of the sync
    // chain, so a sync queued meanwhile (the background timer, an fsync) runs on the old file
    // before it closes or on the new one after, never on a closing one (EBADF would break the writer).
    await this.syncNow(writer);
    const swap = writer.syncChain.then(async () => {
      const old = writer.file;
      writer.file = file;
      writer.segment = segment;
      writer.end = segment.end;
      await old.close();
    });
    writer.syncChain = swap.catch(() => undefined);
    await swap;
  }

  private async createSegment(firstSeq: number): Promise<Segment> {
    const segment = newSegment(this.logDir, firstSeq);
    await writeSegmentHeader(segment.path, 'wx');
    await fsyncDir(this.logDir);
    segment.end = SEGMENT_MAGIC.length;
    this.segments.push(segment);
    return segment;
  }

  private ensureWriter(): Promise<Writer> {
    if (this.closed) return Promise.reject(new StoreUnavailableError(`project ${this.label}: store is closed`));
    this.writerReady ??= this.becomeWriter().catch((error: unknown) => {
      this.writerReady = undefined;
      throw asStoreError(`opening ${this.label} for writing`, error);
    });
    return this.writerReady;
  }

  private async becomeWriter(): Promise<Writer> {
    await this.previousClosed;
    await mkdir(this.logDir, { recursive: true });
    const lock = await acquireWriterLock(join(this.projectDir, 'writer.lock'), this.label);
    try {
      // One exclusive section from the last scan to publishing the writer: a scan that began
      // earlier has finished, and every later one sees the writer and leaves the segments alone.
      const writer = await this.exclusive(async (): Promise<Writer> => {
        const damage = await this.scan('write');
        if (damage) await this.cut(damage);
        if (this.segments.length === 0) await this.createSegment(1);
        const segment = this.segments.at(-1)!;
        const file = await open(segment.path, 'r+');
        const published: Writer = {
          lock,
          file,
          segment,
          end: segment.end,
          nextSeq: this.headSeq + 1,
          lastTimeMs: await this.lastTimeMs(),
          queue: [],
          flushing: false,
          writtenSeq: this.headSeq,
          syncedSeq: this.headSeq,
          syncWaiters: [],
          syncChain: Promise.resolve(),
          syncQueued: false,
          idle: [],
        };
        this.writer = published;
        return published;
      });
      this.updateWatching();
      return writer;
    } catch (error) {
      await lock.release();
      throw error;
    }
  }

  /** Catches up with the files unless this process is the writer (then memory is the truth). */
  private refresh(): Promise<void> {
    if (this.writer) return Promise.resolve();
    return this.exclusive(async () => {
      if (!this.writer) await this.scan('read');
    });
  }

  private async lastTimeMs(): Promise<number> {
    const time = this.headSeq > 0 ? (await this.readKnown(this.headSeq, this.headSeq, 1))[0]?.time : undefined;
    return time ? Date.parse(time) : 0;
  }

  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.scanning.then(work);
    this.scanning = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /**
   * Reads segment files past what is known. A tail that is not a valid record is, to a reader, a
   * write in flight when it is cut short (and damage when a whole record fails its checksum even
   * on a second look). To a writer a short tail is a torn write from a crash, returned to be cut;
   * anything else is damage it refuses, naming the repair command. Damage with valid records
   * after it is refused in every mode but 'repair': cutting it loses acknowledged events.
   */
  private async scan(mode: 'read' | 'write' | 'repair'): Promise<Damage | undefined> {
    return io(`reading the log of ${this.label}`, async () => {
      const known = this.segments.at(-1)?.firstSeq ?? 0;
      for (const firstSeq of await listSegments(this.logDir)) {
        if (firstSeq > known) this.segments.push(newSegment(this.logDir, firstSeq));
      }
      let damage: Damage | undefined;
      for (let i = this.firstUnsealed; i < this.segments.length; i++) {
        const segment = this.segments[i]!;
        const previous = this.segments[i - 1];
        if (previous && segment.firstSeq !== previous.lastSeq + 1) {
          throw new CorruptLogError(`${segment.path}: starts at seq ${segment.firstSeq} but the previous segment ends at ${previous.lastSeq}`);
        }
        const isLast = i === this.segments.length - 1;
        let end = await scanSegment(segment);
        if (end.kind === 'clean') {
          if (!isLast) this.firstUnsealed = i + 1;
          continue;
        }
        if (!isLast) throw new CorruptLogError(`${segment.path}: ${end.kind === 'bad' ? `${end.reason} at offset ${end.at}` : 'no header'}, and later segments exist`);
        if (end.kind === 'no-header') {
          if (mode !== 'read') {
            await writeSegmentHeader(segment.path, 'r+');
            segment.end = SEGMENT_MAGIC.length;
          }
          continue;
        }
        if (mode === 'read' && !end.incomplete) {
          await sleep(RECHECK_MS);
          end = await scanSegment(segment);
          if (end.kind !== 'bad' || end.incomplete) continue;
        }
        const tail = await readTail(segment.path, end.at, end.size);
        const torn = end.incomplete || tail.every((byte) => byte === 0);
        const at = `${segment.path}: ${end.reason} at offset ${end.at}`;
        if (lastValidSeq(tail, segment.lastSeq) !== undefined) {
          if (mode !== 'repair') throw new CorruptLogError(`${at} with valid records after it; refusing to cut them off. ${this.repairHint()}`);
        } else if (mode === 'read') {
          if (!torn) throw new CorruptLogError(`${at}, a whole record that fails its checksum: damage, not a write in flight. ${this.repairHint()}`);
          continue;
        } else if (mode === 'write' && !torn) {
          throw new CorruptLogError(`${at}, a whole record that fails its checksum: damage, not a torn write; refusing to write after it. ${this.repairHint()}`);
        }
        damage = { segment, at: end.at, tail, reason: end.reason, torn };
      }
      this.headSeq = this.segments.at(-1)?.lastSeq ?? 0;
      return damage;
    });
  }

  private repairHint(): string {
    return `Run "lighthouse-bridge repair ${this.label} --store file://${resolve(this.projectDir, '..', '..')}" to cut it off; the cut is kept and its sequence numbers are recorded as lost.`;
  }

  /**
   * Cuts the damaged tail off the last segment and puts one EventLost per sequence number it
   * claimed in its place, so no number is ever handed out twice (ADR 0010). The cut bytes are
   * kept under `cut/` first. The marker is written over the tail before the file is shortened:
   * a crash in between leaves the marker in place.
   */
  private async cut(damage: Damage): Promise<CutReport> {
    const { segment, at, tail } = damage;
    const lastKept = segment.lastSeq;
    const claimed = claimedSeqs(tail, lastKept + 1);
    const lastLost = Math.max(lastKept + 1, claimed === undefined ? 0 : claimed.first + claimed.count - 1, lastValidSeq(tail, lastKept) ?? 0);
    const savedAs = join(this.projectDir, 'cut', `${basename(segment.path)}@${at}`);
    await writeFileAtomic(savedAs, tail);
    const reason = damage.torn ? `torn write (${damage.reason})` : damage.reason;
    const report: CutReport = { file: segment.path, offset: at, bytes: tail.length, reason, savedAs, lostSeqs: { first: lastKept + 1, last: lastLost } };

    const time = new Date(Math.max(Date.now(), await this.lastTimeMs())).toISOString();
    const lost: NewEvent = { type: 'EventLost', actor: 'system', data: { file: report.file, offset: at, bytes: tail.length, reason, savedAs } };
    const count = lastLost - lastKept;
    const marker = encodeRecord(lastKept + 1, count, JSON.stringify({ t: time, e: Array.from({ length: count }, () => lost) } satisfies Payload));
    const file = await open(segment.path, 'r+');
    try {
      await writeAll(file, marker, at);
      await file.truncate(at + marker.length);
      await file.datasync();
    } finally {
      await file.close();
    }
    noteRecord(segment, lastKept + 1, count, at, at + marker.length);
    this.headSeq = segment.lastSeq;
    logger().warn(`cut ${tail.length} bytes off ${this.label}'s log: ${reason}; seqs ${lastKept + 1}-${lastLost} recorded as lost`, {
      project: this.label,
      ...report,
      ...(claimed === undefined ? {} : { claimedSeqs: `${claimed.first}-${claimed.first + claimed.count - 1}` }),
    });
    return report;
  }

  private segmentIndexFor(seq: number): number {
    let lo = 0;
    let hi = this.segments.length - 1;
    let found = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.segments[mid]!.firstSeq <= seq) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  private notify(): void {
    for (const listener of this.listeners) listener();
  }

  /** Another process's appends only show up by looking: watch the log dir while anyone listens. */
  private updateWatching(): void {
    const wanted = this.listeners.size > 0 && !this.writer && !this.closed;
    if (!wanted) {
      this.unwatch();
      clearInterval(this.pollTimer);
      this.pollTimer = undefined;
      return;
    }
    if (this.watchedDir !== this.logDir) this.watchNearest();
    // The safety net's pace follows whether anything is watched at all.
    const pace = this.watcher ? WATCHED_POLL_MS : POLL_MS;
    if (this.pollTimer && this.pollPace !== pace) {
      clearInterval(this.pollTimer);
      this.pollTimer = undefined;
    }
    this.pollPace = pace;
    this.pollTimer ??= setInterval(() => {
      // A watch that failed (or a store directory still missing) is tried again at each tick.
      if (!this.watcher) this.updateWatching();
      this.poll();
    }, pace);
  }

  /**
   * Watches the log dir, or while it does not exist yet (a project nobody wrote), the nearest
   * directory above it within the store: its creation shows there, and the watch moves down.
   * Only a missing directory sends the watch up; any other failure leaves the 20 ms poll.
   */
  private watchNearest(): void {
    this.unwatch();
    const top = dirname(dirname(this.projectDir));
    let dir = this.logDir;
    let below: string | undefined;
    // Bounded: a writer's mkdir -p may create the directories below while we climb, a few times.
    for (let attempt = 0; attempt < 16; attempt++) {
      try {
        this.watchDir(dir);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || dir === top) return;
        [below, dir] = [dir, dirname(dir)];
        continue;
      }
      if (below === undefined || !existsSync(below)) break;
      // Made while we climbed: start again from the log dir.
      this.unwatch();
      [below, dir] = [undefined, this.logDir];
    }
    if (this.watchedDir !== this.logDir) this.poll(); // the log may have appeared meanwhile
  }

  /** Watches `dir` (throws when it cannot); on a directory above the log, an event means look again lower down. */
  private watchDir(dir: string): void {
    // Persistent like a Redis connection: an open subscription keeps the process alive.
    const watcher = watch(dir, () => {
      if (dir !== this.logDir) this.updateWatching();
      this.poll();
    });
    watcher.on('error', () => {
      if (this.watcher === watcher) this.unwatch();
    });
    this.watcher = watcher;
    this.watchedDir = dir;
  }

  private unwatch(): void {
    this.watcher?.close();
    this.watcher = undefined;
    this.watchedDir = undefined;
  }

  private polling = false;
  private pollAgain = false;

  private poll(): void {
    if (this.polling) {
      this.pollAgain = true;
      return;
    }
    this.polling = true;
    const before = this.headSeq;
    this.refresh()
      .then(
        () => {
          if (this.headSeq === before) return;
          // A log found by polling, not by the watch above it: watch the log itself from now on.
          if (this.watchedDir !== this.logDir) this.updateWatching();
          this.notify();
        },
        () => this.notify(), // listeners read, and so see the error themselves
      )
      .finally(() => {
        this.polling = false;
        if (this.pollAgain) {
          this.pollAgain = false;
          this.poll();
        }
      });
  }
}

async function writeAll(file: FileHandle, buf: Buffer, position: number): Promise<void> {
  let written = 0;
  while (written < buf.length) {
    const { bytesWritten } = await file.write(buf, written, buf.length - written, position + written);
    written += bytesWritten;
  }
}

async function readTail(path: string, from: number, to: number): Promise<Buffer> {
  const tail = Buffer.alloc(to - from);
  const file = await open(path, 'r');
  try {
    await file.read(tail, 0, tail.length, from);
  } finally {
    await file.close();
  }
  return tail;
}

/** Makes the file at `path` hold just the segment header, durably: a new file ('wx') or a torn one ('r+'). */
async function writeSegmentHeader(path: string, flags: 'wx' | 'r+'): Promise<void> {
  const file = await open(path, flags);
  try {
    if (flags === 'r+') await file.truncate(0);
    await file.write(SEGMENT_MAGIC, 0, SEGMENT_MAGIC.length, 0);
    await file.datasync();
  } finally {
    await file.close();
  }
}
