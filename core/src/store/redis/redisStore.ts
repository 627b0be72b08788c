import { contentHash, isContentHash } from '../../events/contentHash.js';
import type { NewEvent, RecordedEvent } from '../../events/events.js';
import type { ProjectId } from '../../events/projectId.js';
import { givenTimeMs, LogRegressedError, type AppendOptions, type EventStore, type LogRegression, type ReadOptions, type Snapshot, type Subscription } from '../eventStore.js';
import { createLogger, type Logger } from '../../observability/logger.js';
import { logRegressions } from '../../observability/metrics.js';
import { AppendQueue } from './appendQueue.js';
import { CHUNK_BYTES, chunkedKeys, CorruptValueError, execOrThrow, queueChunkedWrite, readChunked, singleChunk } from './chunks.js';
import type { RedisClient } from '../../redis/client.js';
import { projectKeys } from '../../redis/keys.js';
import { describeLocation, type RedisUrl } from '../../redis/url.js';
import { openStoreClient, unavailable } from './connection.js';
import { decodeEntry, entryId, seqOfEntryId, type BlobWrite, type StreamEntry } from './log.js';
import { describeRegression, LogHeads } from './logHeads.js';
import { TailHub } from './tail.js';
import { snapshotsToPrune } from '../snapshotRetention.js';

const DEFAULT_READ_LIMIT = 1000;

/** An `EventStore` on Redis Streams, for a single Redis or a Redis Cluster (ADR 0020). */
export async function openRedisStore(url: RedisUrl, log: Logger = createLogger('redis-store')): Promise<EventStore> {
  const redis = await openStoreClient(url, 'commands');
  // Client id 0 never exists, so this only asks whether the ACL allows CLIENT UNBLOCK at all.
  const canUnblock = !url.cluster && (await redis.client('UNBLOCK', 0).then(() => true, () => false));
  return new RedisEventStore(url, redis, canUnblock, log);
}

class RedisEventStore implements EventStore {
  readonly kind = 'redis';
  readonly location: string;
  private readonly tails: TailHub;
  private readonly appends: AppendQueue;
  private readonly heads: LogHeads;

  constructor(
    private readonly url: RedisUrl,
    private readonly redis: RedisClient,
    shareTailConnection: boolean,
    log: Logger,
  ) {
    this.location = describeLocation(url);
    this.heads = new LogHeads((key, regression) => {
      logRegressions.inc({ backend: this.kind });
      log.error(`Redis ${this.location}: ${describeRegression(key, regression)}`, { log: key, ...regression });
    });
    this.tails = new TailHub(url, redis, shareTailConnection, this.heads);
    this.appends = new AppendQueue(
      redis,
      (error) => unavailable(url, 'append', error),
      this.heads,
      (key, regression) => new LogRegressedError(`Redis ${this.location}: append refused: ${describeRegression(key, regression)}`),
    );
  }

  logRegression(project: ProjectId): LogRegression | undefined {
    return this.heads.regression(projectKeys(project).log);
  }

  async append(project: ProjectId, events: readonly NewEvent[], options: AppendOptions = {}): Promise<RecordedEvent[]> {
    const keys = projectKeys(project);
    const blobs: BlobWrite[] = [];
    for (const blob of options.blobs ?? []) {
      const content = Buffer.from(blob.content.buffer, blob.content.byteOffset, blob.content.byteLength);
      // Chunked content is a MULTI of its own, stored first; content in one chunk goes with the append.
      if (content.length > CHUNK_BYTES) await this.putBlob(project, content);
      else blobs.push({ key: keys.blob(blob.hash), content });
    }
    return this.appends.append(keys.log, { events, expectedVersion: options.expectedVersion, timeMs: givenTimeMs(options), blobs });
  }

  /** Every append resolved at the server's acknowledgement, which is all the durability Redis is configured to give. */
  async sync(): Promise<void> {}

  async head(project: ProjectId): Promise<number> {
    return this.call('head', () => this.heads.look(this.redis, projectKeys(project).log));
  }

  async read(project: ProjectId, options: ReadOptions = {}): Promise<RecordedEvent[]> {
    const from = Math.max(1, Math.floor(options.from ?? 1));
    const limit = Math.floor(options.limit ?? DEFAULT_READ_LIMIT);
    const to = options.to === undefined ? '+' : entryId(Math.floor(options.to));
    if (limit <= 0 || (options.to !== undefined && options.to < from)) return [];
    const log = projectKeys(project).log;
    const entries = (await this.call('read', () => this.redis.xrange(log, entryId(from), to, 'COUNT', limit))) as StreamEntry[];
    const last = entries.at(-1);
    if (last) this.heads.saw(log, seqOfEntryId(last[0]));
    return this.call('decode the log', async () => entries.map(decodeEntry));
  }

  subscribe(
    project: ProjectId,
    afterSeq: number,
    onEvents: (events: RecordedEvent[]) => void,
    onError?: (error: Error) => void,
  ): Subscription {
    return this.tails.subscribe(projectKeys(project).log, afterSeq, onEvents, onError);
  }

  async putBlob(project: ProjectId, content: Uint8Array): Promise<string> {
    const bytes = Buffer.from(content.buffer, content.byteOffset, content.byteLength);
    const hash = contentHash(bytes);
    const key = projectKeys(project).blob(hash);
    await this.call('store a blob', async () => {
      // Content in one chunk is one HSET, whole by itself; the same content written again changes
      // nothing, so there is no EXISTS round trip first.
      if (bytes.length <= CHUNK_BYTES) {
        await this.redis.hset(key, singleChunk(bytes));
        return;
      }
      // Content is addressed by hash: if the header is there, the whole blob is.
      if ((await this.redis.exists(key)) === 1) return;
      const batch = this.redis.multi();
      queueChunkedWrite(batch, key, bytes);
      await execOrThrow(batch);
    });
    return hash;
  }

  async getBlob(project: ProjectId, hash: string): Promise<Buffer | undefined> {
    if (!isContentHash(hash)) return undefined;
    const key = projectKeys(project).blob(hash);
    const value = await this.call('read a blob', () => readChunked(this.redis, key));
    if (!value) return undefined;
    if (contentHash(value.content) !== hash) {
      throw new CorruptValueError(`Redis ${this.location}: blob ${key} does not match its hash`);
    }
    return value.content;
  }

  async saveSnapshot(project: ProjectId, snapshot: Snapshot): Promise<void> {
    const keys = projectKeys(project);
    const key = keys.snapshot(snapshot.seq);
    const data = Buffer.from(snapshot.data.buffer, snapshot.data.byteOffset, snapshot.data.byteLength);
    await this.call('save a snapshot', async () => {
      // Replacing a snapshot of the same seq must not leave the old one's extra chunks behind.
      const previousChunks = Number((await this.redis.hget(key, 'chunks')) ?? 0);
      const batch = this.redis.multi().del(...chunkedKeys(key, previousChunks));
      queueChunkedWrite(batch, key, data, { seq: String(snapshot.seq), time: snapshot.time });
      batch.zadd(keys.snapshots, snapshot.seq, String(snapshot.seq));
      await execOrThrow(batch);
      await this.pruneSnapshots(project);
    });
  }

  async loadSnapshot(project: ProjectId, atOrBefore?: number): Promise<Snapshot | undefined> {
    const keys = projectKeys(project);
    const max = atOrBefore === undefined ? '+inf' : String(atOrBefore);
    return this.call('load a snapshot', async () => {
      // A concurrent save may prune the snapshot found, wholly or (between the header and chunk
      // reads) partly; look again then. Pruning is atomic, so finding the same one listed again
      // means it really is damaged (or evicted); after three looks it gives up, saves racing it.
      let damaged: { seq: string; error: CorruptValueError } | undefined;
      for (let look = 1; ; look++) {
        const [found] = await this.redis.zrevrangebyscore(keys.snapshots, max, '-inf', 'LIMIT', 0, 1);
        if (found === undefined) return undefined;
        if (damaged && (damaged.seq === found || look > 3)) throw damaged.error;
        const key = keys.snapshot(Number(found));
        try {
          const value = await readChunked(this.redis, key);
          if (value) return { seq: Number(value.fields['seq']), time: value.fields['time'] ?? '', data: value.content };
          damaged = { seq: found, error: new CorruptValueError(`Redis ${this.location}: snapshot ${key} is listed but missing`) };
        } catch (error) {
          if (!(error instanceof CorruptValueError)) throw error;
          damaged = { seq: found, error };
        }
      }
    });
  }

  async ping(): Promise<void> {
    await this.call('ping', () => this.redis.ping());
  }

  async close(): Promise<void> {
    await this.tails.close();
    await this.redis.quit().catch(() => this.redis.disconnect());
  }

  private async pruneSnapshots(project: ProjectId): Promise<void> {
    const keys = projectKeys(project);
    const pruned = snapshotsToPrune((await this.redis.zrange(keys.snapshots, 0, -1)).map(Number));
    if (pruned.length === 0) return;
    const batch = this.redis.multi();
    for (const seq of pruned) {
      const key = keys.snapshot(seq);
      batch.del(...chunkedKeys(key, Number((await this.redis.hget(key, 'chunks')) ?? 0)));
    }
    batch.zrem(keys.snapshots, ...pruned.map(String));
    await execOrThrow(batch);
  }

  private async call<T>(what: string, operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      throw unavailable(this.url, what, error);
    }
  }
}
