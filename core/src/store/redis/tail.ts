import type { RecordedEvent } from '../../events/events.js';
import type { Subscription } from '../eventStore.js';
import type { RedisClient } from '../../redis/client.js';
import type { RedisUrl } from '../../redis/url.js';
import { openStoreClient, replyCode, unavailable } from './connection.js';
import { decodeEntry, entryId, type StreamEntry } from './log.js';
import type { LogHeads } from './logHeads.js';

const BLOCK_MS = 5_000;
const PAGE = 1_000;
/**
 * After a read that brought events, the next waits this long and does not block, so a busy log is
 * read a batch at a time instead of one XREAD per append (the mount's thread pays for each: ADR 0092).
 */
const GATHER_MS = 1;
const MAX_BACKOFF_MS = 1_000;
/** Reply errors that no retry can cure: the subscription ends and reports them. */
const FATAL_REPLIES = new Set(['NOPERM', 'WRONGTYPE']);
/**
 * Refused credentials (the ACL user deleted, its password changed) end the subscription too, but
 * only when they persist: a Redis restarted without an ACL file refuses them until the operator
 * restores the user.
 */
const AUTH_REPLIES = new Set(['WRONGPASS', 'NOAUTH']);
const AUTH_REFUSALS_TOLERATED = 5;

interface TailSubscriber {
  readonly key: string;
  lastSeq: number;
  closed: boolean;
  readonly onEvents: (events: RecordedEvent[]) => void;
  readonly onError: ((error: Error) => void) | undefined;
}

/**
 * Live tails over XREAD BLOCK on connections of their own (a blocked connection can do nothing
 * else). Against a single Redis one connection serves every subscription of the store: one XREAD
 * names all their streams, and CLIENT UNBLOCK ends it early when a new stream must join. Where
 * that cannot work, each project tailed gets its own connection: Redis Cluster refuses multi-key
 * commands across slots (each project is its own slot), and ACL users without @dangerous may not
 * send CLIENT UNBLOCK (a project's own user only ever tails its one project anyway).
 *
 * A subscriber's position is its last delivered seq, and every XREAD starts from the lowest of
 * them, so a reconnect resumes where each subscriber stopped; entries a subscriber already has are
 * skipped, and a batch that would leave a gap is not delivered, so each event arrives once, in order.
 *
 * A Redis that comes back after a connection loss may have come back empty (no persistence): the
 * XREAD from the old position would then wait for ever on a log that has gone backwards. So after
 * any failure the heads are looked at before blocking again, and a log found shorter than seen is
 * reported (`LogHeads`) and no longer delivered from.
 */
export class TailHub {
  private readonly loops = new Map<string, TailLoop>();

  constructor(
    private readonly url: RedisUrl,
    private readonly commands: RedisClient,
    /** One connection for all streams; needs CLIENT UNBLOCK on a single Redis. */
    private readonly shared: boolean,
    private readonly heads: LogHeads,
  ) {}

  subscribe(key: string, afterSeq: number, onEvents: TailSubscriber['onEvents'], onError: TailSubscriber['onError']): Subscription {
    const subscriber: TailSubscriber = { key, lastSeq: afterSeq, closed: false, onEvents, onError };
    const loopKey = this.shared ? '' : key;
    let loop = this.loops.get(loopKey);
    if (!loop) {
      const created = new TailLoop(this.url, this.commands, this.shared, this.heads, () => {
        if (this.loops.get(loopKey) === created) this.loops.delete(loopKey);
      });
      this.loops.set(loopKey, created);
      loop = created;
    }
    const owner = loop;
    owner.add(subscriber);
    return {
      close: async () => {
        subscriber.closed = true;
        await owner.remove(subscriber);
      },
      get gathering() {
        return owner.gathering;
      },
    };
  }

  async close(): Promise<void> {
    await Promise.all([...this.loops.values()].map((loop) => loop.stop()));
    this.loops.clear();
  }
}

class TailLoop {
  private readonly subscribers = new Set<TailSubscriber>();
  private connection: RedisClient | undefined;
  /** This connection's CLIENT ID, to interrupt its XREAD when a subscriber needs another stream. */
  private clientId: number | undefined;
  /** The streams of the XREAD in flight, if one is. */
  private blockedOn: Set<string> | undefined;
  /**
   * An event may be in the log and not delivered on purpose: from a read that brought events,
   * through the pause, until the read after it (which does not block) has come back.
   */
  gathering = false;
  private stopped = false;
  /** Refusals of our credentials since the last successful XREAD, and the latest of them. */
  private authRefusals = 0;
  private authRefused: Error | undefined;
  private wake: (() => void) | undefined;
  /** Set by a failure: Redis may have restarted empty, so look at the heads before blocking again. */
  private checkHeads = false;
  private readonly done: Promise<void>;
  /**
   * Rejects once stop() is called. What the loop waits on is raced against it: a command ioredis
   * never settles (an XREAD queued while a Cluster node restarts) must not keep a store from closing.
   */
  private readonly stopping: Promise<never>;
  private signalStop: () => void = () => {};

  constructor(
    private readonly url: RedisUrl,
    /** For backlog reads and CLIENT UNBLOCK, which must not wait behind the blocked XREAD. */
    private readonly commands: RedisClient,
    /** Serves several streams, so a new one interrupts the XREAD in flight. */
    private readonly interruptible: boolean,
    private readonly heads: LogHeads,
    private readonly onStopped: () => void,
  ) {
    this.stopping = new Promise<never>((_, reject) => (this.signalStop = () => reject(new Error('tail stopped'))));
    this.stopping.catch(() => undefined);
    this.done = this.run();
  }

  add(subscriber: TailSubscriber): void {
    this.subscribers.add(subscriber);
    void this.catchUp(subscriber);
    if (this.blockedOn && !this.blockedOn.has(subscriber.key)) void this.interrupt();
    this.wake?.();
  }

  async remove(subscriber: TailSubscriber): Promise<void> {
    this.subscribers.delete(subscriber);
    if (this.subscribers.size === 0) await this.stop();
  }

  async stop(): Promise<void> {
    if (!this.stopped) {
      this.stopped = true;
      this.signalStop();
      this.onStopped();
      this.wake?.();
      this.connection?.disconnect();
    }
    await this.done;
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      if (this.subscribers.size === 0) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
        continue;
      }
      const from = new Map<string, number>();
      for (const s of this.subscribers) from.set(s.key, Math.min(s.lastSeq, from.get(s.key) ?? Infinity));
      const keys = [...from.keys()];
      let reply: Array<[string, StreamEntry[]]> | null;
      try {
        reply = await this.unlessStopped(this.readOnce(keys, from, !this.gathering));
        failures = 0;
        this.authRefusals = 0;
      } catch (error) {
        this.gathering = false;
        if (this.stopped) break;
        this.checkHeads = true;
        const code = replyCode(error);
        if (code !== undefined && FATAL_REPLIES.has(code)) {
          this.fail([...this.subscribers], unavailable(this.url, 'tail', error));
          continue;
        }
        // A fresh connect reports the refusal itself; a connection that reconnects in the
        // background reports it as an error event, and its commands fail as not writeable.
        if (code !== undefined && AUTH_REPLIES.has(code)) this.noteAuthRefused(error);
        if (this.authRefusals >= AUTH_REFUSALS_TOLERATED) {
          this.fail([...this.subscribers], unavailable(this.url, 'tail', this.authRefused));
          continue;
        }
        failures++;
        await sleep(Math.min(100 * failures, MAX_BACKOFF_MS));
        continue;
      } finally {
        this.blockedOn = undefined;
      }
      for (const [key, entries] of reply ?? []) {
        this.deliver(
          [...this.subscribers].filter((s) => s.key === key),
          entries,
        );
      }
      this.gathering = !this.stopped && (reply ?? []).some(([, entries]) => entries.length > 0);
      if (this.gathering) await this.unlessStopped(sleep(GATHER_MS)).catch(() => undefined);
    }
    this.connection?.disconnect();
  }

  /**
   * Reads the backlog at once over the command connection, so a subscriber joining a stream that
   * is already tailed from further on does not wait for the next XREAD to come round. Connection
   * failures are left to the tail loop, which reads from the same position.
   */
  private async catchUp(subscriber: TailSubscriber): Promise<void> {
    for (;;) {
      let entries: StreamEntry[];
      try {
        entries = (await this.commands.xrange(subscriber.key, entryId(subscriber.lastSeq + 1), '+', 'COUNT', PAGE)) as StreamEntry[];
      } catch {
        return;
      }
      if (subscriber.closed) return;
      this.deliver([subscriber], entries);
      if (entries.length < PAGE) return;
    }
  }

  /** Tells `heads` what each log's head is now; a log that went backwards is reported there. */
  private async lookAtHeads(keys: string[]): Promise<void> {
    for (const key of keys) await this.heads.look(this.commands, key);
  }

  private deliver(readers: TailSubscriber[], entries: StreamEntry[]): void {
    // Entries after a loss belong to another history than the one these readers hold.
    if (readers.some((reader) => this.heads.regression(reader.key))) return;
    let events: RecordedEvent[];
    try {
      events = entries.map(decodeEntry);
    } catch (error) {
      this.fail(readers, unavailable(this.url, 'decode the log', error));
      return;
    }
    for (const reader of readers) {
      // Skip what it has; never leave a gap (a later read starting at its position fills it).
      const fresh = events.filter((e) => e.seq > reader.lastSeq);
      if (reader.closed || fresh.length === 0 || fresh[0]!.seq !== reader.lastSeq + 1) continue;
      reader.lastSeq = fresh[fresh.length - 1]!.seq;
      this.heads.saw(reader.key, reader.lastSeq);
      try {
        reader.onEvents(fresh);
      } catch (error) {
        this.fail([reader], error instanceof Error ? error : new Error(String(error)));
      }
    }
  }

  private fail(readers: TailSubscriber[], error: Error): void {
    for (const reader of readers) {
      if (reader.closed) continue;
      reader.closed = true;
      this.subscribers.delete(reader);
      reader.onError?.(error);
    }
    if (this.subscribers.size === 0) void this.stop();
  }

  private async connect(): Promise<RedisClient> {
    if (!this.connection) {
      const connection = await openStoreClient(this.url, 'tail');
      if (this.stopped) {
        connection.disconnect();
        throw new Error('tail stopped');
      }
      connection.on('close', () => (this.clientId = undefined));
      connection.on('error', (error: unknown) => {
        const code = replyCode(error);
        if (code !== undefined && AUTH_REPLIES.has(code)) this.noteAuthRefused(error);
      });
      this.connection = connection;
    }
    return this.connection;
  }

  /** One XREAD of `keys` after the positions in `from`, on a connection made ready for it. */
  private async readOnce(keys: string[], from: Map<string, number>, block: boolean): Promise<Array<[string, StreamEntry[]]> | null> {
    const connection = await this.connect();
    if (this.checkHeads) {
      await this.lookAtHeads(keys);
      this.checkHeads = false;
    }
    if (this.interruptible && this.clientId === undefined) this.clientId = Number(await connection.client('ID'));
    this.blockedOn = new Set(keys);
    const ids = keys.map((k) => entryId(from.get(k) ?? 0));
    const reply = block ? connection.xread('COUNT', PAGE, 'BLOCK', BLOCK_MS, 'STREAMS', ...keys, ...ids) : connection.xread('COUNT', PAGE, 'STREAMS', ...keys, ...ids);
    return (await reply) as Array<[string, StreamEntry[]]> | null;
  }

  /** `work`, or the stop, whichever comes first; `work` left behind may still settle, unheard. */
  private unlessStopped<T>(work: Promise<T>): Promise<T> {
    work.catch(() => undefined);
    return Promise.race([work, this.stopping]);
  }

  private noteAuthRefused(error: unknown): void {
    this.authRefusals++;
    this.authRefused = error instanceof Error ? error : new Error(String(error));
  }

  /**
   * Ends the XREAD in flight so the next one names the new subscriber's stream. The UNBLOCK can
   * overtake the XREAD (they travel on different connections), so it is repeated while that same
   * XREAD is pending but not yet blocked.
   */
  private async interrupt(): Promise<void> {
    if (!this.interruptible) return;
    const pending = this.blockedOn;
    for (let attempt = 0; attempt < 50 && pending && this.blockedOn === pending; attempt++) {
      if (this.clientId !== undefined) {
        const unblocked = await this.commands.client('UNBLOCK', this.clientId).catch(() => 0);
        if (unblocked === 1) return;
      }
      await sleep(10);
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
