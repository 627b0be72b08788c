import type { RecordedEvent } from '../../events/events.js';
import { ConcurrencyError, type LogRegression } from '../eventStore.js';
import type { RedisClient } from '../../redis/client.js';
import { singleChunk } from './chunks.js';
import type { PipelineReply } from './luaScript.js';
import { appendScript, encodeAppend, parseAppendReply, recorded, regressedHead, type AppendRequest } from './log.js';
import type { LogHeads } from './logHeads.js';

/**
 * Script calls outstanding per project: more than one, so encoding the next batch here overlaps
 * Redis running the last; few, so that batches still form. Batches are capped to keep one script
 * run near a millisecond, since Redis serves no one else while it runs.
 */
const MAX_IN_FLIGHT = 4;
const MAX_APPENDS_PER_CALL = 256;
const MAX_BYTES_PER_CALL = 1024 * 1024;

interface Pending extends AppendRequest {
  args(firstBlobKey: number): string[];
  bytes: number;
  resolve(events: RecordedEvent[]): void;
  reject(error: Error): void;
}

interface ProjectQueue {
  waiting: Pending[];
  inFlight: number;
  scheduled: boolean;
}

/**
 * Group commit for appends. Appends to one project that arrive while earlier ones are on the wire
 * travel together in one run of the append script, so under load the per-call costs (round trip,
 * script start, TIME, reading the head) are paid per batch, not per event. Each append in a batch
 * keeps its own expected version and all-or-nothing outcome; only the transport is shared.
 */
export class AppendQueue {
  private readonly queues = new Map<string, ProjectQueue>();

  constructor(
    private readonly redis: RedisClient,
    /** Maps a failed call to the error each of its appends rejects with. */
    private readonly failure: (error: unknown) => Error,
    /** Floors for the script, and where every head it reports is recorded. */
    private readonly heads: LogHeads,
    /** The error appends to a log that went backwards reject with. */
    private readonly refusal: (log: string, regression: LogRegression) => Error,
  ) {}

  append(log: string, request: AppendRequest): Promise<RecordedEvent[]> {
    const regression = this.heads.regression(log);
    if (regression) return Promise.reject(this.refusal(log, regression));
    const encoded = encodeAppend(request);
    let queue = this.queues.get(log);
    if (!queue) {
      queue = { waiting: [], inFlight: 0, scheduled: false };
      this.queues.set(log, queue);
    }
    const promise = new Promise<RecordedEvent[]>((resolve, reject) => queue.waiting.push({ ...request, ...encoded, resolve, reject }));
    this.schedule(log, queue);
    return promise;
  }

  /**
   * Sends on the next turn of the event loop rather than now, so appends issued in the same turn,
   * and callers woken by the previous batch's replies, join one batch.
   */
  private schedule(log: string, queue: ProjectQueue): void {
    if (queue.scheduled || queue.inFlight >= MAX_IN_FLIGHT || queue.waiting.length === 0) return;
    queue.scheduled = true;
    setImmediate(() => {
      queue.scheduled = false;
      while (queue.inFlight < MAX_IN_FLIGHT && queue.waiting.length > 0) void this.send(log, queue);
      if (queue.inFlight === 0 && queue.waiting.length === 0) this.queues.delete(log);
    });
  }

  private async send(log: string, queue: ProjectQueue): Promise<void> {
    const batch: Pending[] = [];
    // Read at send time, so a batch never lands below a head seen since it was queued.
    const floor = this.heads.floor(log);
    const keys = [log];
    const args = [String(floor)];
    let bytes = 0;
    while (queue.waiting.length > 0 && batch.length < MAX_APPENDS_PER_CALL && (batch.length === 0 || bytes < MAX_BYTES_PER_CALL)) {
      const next = queue.waiting.shift()!;
      bytes += next.bytes;
      for (const arg of next.args(keys.length + 1)) args.push(arg);
      for (const blob of next.blobs) keys.push(blob.key);
      batch.push(next);
    }
    queue.inFlight++;
    // The blobs' HSETs and the script travel in one write and run in that order: the close pays
    // one round trip. The script checks each blob is there before it records the events naming
    // it; a failed HSET shows as that append's refusal.
    const pipeline = this.redis.pipeline();
    for (const pending of batch) for (const blob of pending.blobs) pipeline.hset(blob.key, singleChunk(blob.content));
    appendScript.queue(pipeline, keys, args);
    try {
      const replies = ((await pipeline.exec()) ?? []) as PipelineReply[];
      const outcomes = parseAppendReply(await appendScript.settle(this.redis, replies.at(-1), keys, args), batch.length);
      // Each append's HSET replies, in the order they were queued: its first failure, if any.
      let reply = 0;
      const failures = batch.map((pending) => {
        const own = replies.slice(reply, (reply += pending.blobs.length));
        return own.find(([error]) => error)?.[0] ?? undefined;
      });
      batch.forEach((pending, i) => {
        const outcome = outcomes[i]!;
        if (outcome.ok) {
          this.heads.saw(log, outcome.headBefore + pending.events.length);
          pending.resolve(recorded(pending.events, outcome.headBefore, outcome.ms));
        } else if (outcome.blobMissing) {
          pending.reject(this.failure(failures[i] ?? new Error('a blob of the append was not stored')));
        } else {
          this.heads.saw(log, outcome.head);
          pending.reject(new ConcurrencyError(pending.expectedVersion ?? -1, outcome.head));
        }
      });
    } catch (error) {
      const head = regressedHead(error);
      if (head !== undefined) this.heads.observe(log, head, floor);
      const regression = this.heads.regression(log);
      const mapped = regression ? this.refusal(log, regression) : this.failure(error);
      for (const pending of batch) pending.reject(mapped);
    } finally {
      queue.inFlight--;
      if (queue.waiting.length > 0) this.schedule(log, queue);
      else if (queue.inFlight === 0 && this.queues.get(log) === queue) this.queues.delete(log);
    }
  }
}
