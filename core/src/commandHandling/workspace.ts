import { decide } from '../aggregate/decide.js';
import { evolve } from '../aggregate/evolve.js';
import { DomainError, type Command } from '../aggregate/commands.js';
import { DEFAULT_LIMITS, type ProjectLimits } from '../aggregate/limits.js';
import { normalizePath } from '../aggregate/paths.js';
import type { ProjectState, TreeNode } from '../aggregate/state.js';
import { LruCache } from '../cache/lruCache.js';
import { contentHash } from '../events/contentHash.js';
import type { EpochMs, NewEvent, RecordedEvent } from '../events/events.js';
import { formatProjectId, type ProjectId } from '../events/projectId.js';
import { ConcurrencyError, type Durability, type EventStore, type HashedBlob, type Subscription } from '../store/eventStore.js';
import { REPLAY_PAGE, restore, seqAt } from '../projection/replay.js';
import { DEFAULT_SNAPSHOT_EVERY, SnapshotPolicy } from '../projection/snapshotPolicy.js';
import { fitTogether, leadingBatch, type Queued } from './commandBatch.js';
import { BlobNotFoundError, WorkspaceClosedError } from './errors.js';
import { cacheRequests } from '../observability/metrics.js';

// Bound once: readBlob sits on the FUSE read path.
const blobCacheHits = cacheRequests.labels('blob-l1', 'hit');
const blobCacheMisses = cacheRequests.labels('blob-l1', 'miss');

export interface WorkspaceOptions {
  store: EventStore;
  project: ProjectId;
  /** Recorded on every event this workspace appends unless a call names another. */
  actor: string;
  limits?: Partial<ProjectLimits>;
  /** L1 blob cache budget; default 64 MiB. */
  blobCacheBytes?: number;
  /** Follow the tail so other writers' events reach `state`; default true. */
  live?: boolean;
  /** Save a snapshot every N events (0 = never); default 1000. */
  snapshotEvery?: number;
  /** Background failures (tail stopped, snapshot not saved). Default: ignored. */
  onError?: (error: Error) => void;
  /**
   * When a change resolves: `durable` (default) once it survives a power cut; `visible` once every
   * reader of the store sees it, with durability following (`sync()` waits for it). ADR 0081.
   */
  durability?: Durability;
}

interface QueuedCommand extends Queued {
  actor: string;
  resolve(events: RecordedEvent[]): void;
  reject(error: unknown): void;
}

/** What stat shows of a path while attribute changes nobody waits for are queued (ADR 0098). */
export interface AttributesBehind {
  mode?: number;
  mtimeMs?: EpochMs;
  /** When the last of them was made. */
  ctimeMs: EpochMs;
}

/** The longest an attribute change nobody waits for stays queued for company (ADR 0098). */
const GATHER_ATTRIBUTES_MS = 2;
/** Appends that lose the race this many times in a row give up with EBUSY. */
const MAX_CONFLICT_RETRIES = 16;
/** The longest pause before following a stopped tail again. */
const MAX_RESUBSCRIBE_PAUSE_MS = 5_000;
/** Recent history views kept, by seq; each is a whole tree, so the bound is a count. */
const HISTORY_VIEWS = 8;

/**
 * One project as a live, writable workspace: the head state in memory, kept current from the
 * store's tail, commands decided against it and appended with optimistic concurrency, blob reads
 * through an L1 cache, and read-only views of history. The store is the caller's: `close()` does
 * not close it.
 */
export class ProjectWorkspace {
  readonly project: ProjectId;
  readonly store: EventStore;
  readonly limits: ProjectLimits;
  private readonly actor: string;
  private readonly current: ProjectState;
  private readonly listeners = new Set<(events: RecordedEvent[]) => void>();
  private readonly blobs: LruCache<string, Buffer>;
  private readonly blobLoads = new Map<string, Promise<Buffer>>();
  private readonly views = new LruCache<number, { loading: Promise<ProjectState>; ready?: ProjectState }>(HISTORY_VIEWS, () => 1);
  private readonly snapshots: SnapshotPolicy;
  private readonly onError: (error: Error) => void;
  private readonly durability: Durability;
  private subscription: Subscription | undefined;
  /**
   * Commands wait here while an append is in flight, so this process never races itself on
   * expectedVersion; those that queued meanwhile go out together (commandBatch.ts).
   */
  private readonly queued: QueuedCommand[] = [];
  private running = false;
  /** The last command queued so far (what `sync` and `close` wait for, whatever its outcome). */
  private lastQueued: Promise<unknown> = Promise.resolve();
  private catchingUp: Promise<void> | undefined;
  /** Attribute changes queued by `changeAttributesBehind` and not yet applied, by path. */
  private readonly behind = new Map<string, { shown: AttributesBehind; queued: number }>();
  private closed = false;
  private tailFailures = 0;
  private resubscribeTimer: NodeJS.Timeout | undefined;
  /** Starts the queue when attribute changes alone are waiting in it. */
  private gatherTimer: NodeJS.Timeout | undefined;

  private constructor(options: WorkspaceOptions, limits: ProjectLimits, state: ProjectState, snapshotSeq: number) {
    this.store = options.store;
    this.project = options.project;
    this.actor = options.actor;
    this.limits = limits;
    this.current = state;
    this.onError = options.onError ?? (() => {});
    this.durability = options.durability ?? 'durable';
    this.blobs = new LruCache(options.blobCacheBytes ?? 64 * 1024 * 1024, (b) => b.byteLength);
    this.snapshots = new SnapshotPolicy(options.store, options.project, options.snapshotEvery ?? DEFAULT_SNAPSHOT_EVERY, snapshotSeq, this.onError);
  }

  /** Latest snapshot plus replay to the head; then, unless `live: false`, follows the tail. */
  static async open(options: WorkspaceOptions): Promise<ProjectWorkspace> {
    const limits = { ...DEFAULT_LIMITS, ...options.limits };
    const { state, snapshotSeq } = await restore(options.store, options.project, undefined, options.onError);
    const workspace = new ProjectWorkspace(options, limits, state, snapshotSeq);
    workspace.snapshots.observe(state);
    if (options.live ?? true) workspace.follow();
    return workspace;
  }

  /**
   * Subscribes to the tail after our head. A tail that stops (the store's own retries exhausted,
   * e.g. Redis down for long) is reported and started again from wherever the head then is, with
   * a growing pause, so a mount never silently freezes on an old state.
   */
  private follow(): void {
    if (this.closed) return;
    this.subscription = this.store.subscribe(
      this.project,
      this.current.seq,
      (events) => {
        this.tailFailures = 0;
        this.apply(events);
      },
      (error) => {
        this.onError(error);
        if (this.closed) return;
        const pause = Math.min(250 * 2 ** this.tailFailures++, MAX_RESUBSCRIBE_PAUSE_MS);
        this.resubscribeTimer = setTimeout(() => this.follow(), pause).unref();
      },
    );
  }

  /**
   * True while the tail holds other writers' events back on purpose (a busy Redis log is read a
   * batch at a time, ADR 0092): "does not exist" must not be remembered now.
   */
  get gathering(): boolean {
    return this.subscription?.gathering ?? false;
  }

  /** The head state. Evolved in place as events arrive: read it, do not keep references across awaits. */
  get state(): ProjectState {
    return this.current;
  }

  get head(): number {
    return this.current.seq;
  }

  /** The node at `path` (relative; `''` is the root). Throws DomainError for paths that cannot exist. */
  lookup(path: string): TreeNode | undefined {
    return this.current.nodes.get(normalizePath(path, this.limits));
  }

  /** Called with each batch of newly applied events, after `state` reflects them. Returns unsubscribe. */
  onEvents(listener: (events: RecordedEvent[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Decides `command` on the current state and appends the result with expectedVersion = head.
   * When another process got there first, catches up and decides again (bounded, then EBUSY).
   * Resolves once the events are durable (or visible, see `durability`) and applied to `state`; a
   * refused command throws DomainError and appends nothing. Commands run in call order; file
   * writes queued behind an append in flight may share the next one.
   */
  execute(command: Command, actor: string = this.actor, blobs?: readonly HashedBlob[]): Promise<RecordedEvent[]> {
    if (this.closed) return Promise.reject(new WorkspaceClosedError(`workspace for ${formatProjectId(this.project)} is closed`));
    const settled = this.enqueue(command, actor, blobs);
    this.run();
    return settled;
  }

  private enqueue(command: Command, actor: string, blobs?: readonly HashedBlob[]): Promise<RecordedEvent[]> {
    const settled = new Promise<RecordedEvent[]>((resolve, reject) => this.queued.push({ command, actor, blobs, resolve, reject }));
    this.lastQueued = settled;
    return settled;
  }

  /** Starts appending what is queued, unless an append is in flight (whose end takes the queue on). */
  private run(): void {
    clearTimeout(this.gatherTimer);
    this.gatherTimer = undefined;
    if (this.running) return;
    this.running = true;
    queueMicrotask(() => void this.runQueued());
  }

  /**
   * chmod/utimens that the caller does not wait for (ADR 0098): refused at once if the command
   * would be refused now, else queued behind everything before it, so every later change, `sync`
   * and `close` wait for it, and shown by `attributesBehind` until it is applied. One refused or
   * lost when its turn comes (the path went meanwhile, the store failed) is reported to `onError`.
   */
  changeAttributesBehind(path: string, change: { mode?: number; mtimeMs?: EpochMs }): void {
    if (this.closed) throw new WorkspaceClosedError(`workspace for ${formatProjectId(this.project)} is closed`);
    const command: Command = { type: 'ChangeAttributes', path: normalizePath(path, this.limits), ...change };
    const [event] = decide(command, this.current, this.limits, Date.now(), this.actor);
    if (event?.type !== 'AttributesChanged') return;
    const key = event.data.path;
    const entry = this.behind.get(key) ?? { shown: { ctimeMs: 0 }, queued: 0 };
    if (event.data.mode !== undefined) entry.shown.mode = event.data.mode;
    if (event.data.mtimeMs !== undefined) entry.shown.mtimeMs = event.data.mtimeMs;
    entry.shown.ctimeMs = Date.now();
    entry.queued++;
    this.behind.set(key, entry);
    const settled = (): void => {
      if (--entry.queued === 0 && this.behind.get(key) === entry) this.behind.delete(key);
    };
    // Not sent at once: the change that follows (rsync's utimens, then its rename) comes within a
    // round trip of the kernel's and goes out in the same append; nothing waits on this one meanwhile.
    if (!this.running) this.gatherTimer ??= setTimeout(() => this.run(), GATHER_ATTRIBUTES_MS);
    this.enqueue(command, this.actor).then(settled, (error: unknown) => {
      settled();
      const reason = error instanceof Error ? error.message : String(error);
      this.onError(new Error(`${key}: a change of attributes that had already returned was not recorded: ${reason}`));
    });
  }

  /** Attributes of `path` changed by `changeAttributesBehind` and not applied yet; undefined when none. */
  attributesBehind(path: string): AttributesBehind | undefined {
    return this.behind.size === 0 ? undefined : this.behind.get(path)?.shown;
  }

  /** Stores `content` as a blob and records it at `path`. Oversized content is refused before it is stored. */
  async writeFile(path: string, content: Uint8Array, options: { mode?: number; mtimeMs?: EpochMs; actor?: string } = {}): Promise<RecordedEvent[]> {
    if (this.closed) throw new WorkspaceClosedError(`workspace for ${formatProjectId(this.project)} is closed`);
    const normalized = normalizePath(path, this.limits);
    if (content.byteLength > this.limits.maxFileBytes) {
      throw new DomainError('EFBIG', `${normalized}: ${content.byteLength} bytes is over the ${this.limits.maxFileBytes}-byte file limit`);
    }
    const hash = contentHash(content);
    const command: Command = { type: 'WriteFile', path: normalized, hash, size: content.byteLength };
    if (options.mode !== undefined) command.mode = options.mode;
    if (options.mtimeMs !== undefined) command.mtimeMs = options.mtimeMs;
    // The blob travels with the append (one round trip on Redis), so a refused command stores none.
    const recorded = await this.execute(command, options.actor ?? this.actor, [{ hash, content }]);
    // Copied: the caller may reuse its buffer, and cached content must match its hash forever.
    if (content.byteLength <= this.blobs.maxBytes) this.blobs.set(hash, Buffer.from(content));
    return recorded;
  }

  /** True when no command is queued or being appended (a process about to exit loses nothing of this workspace's). */
  get idle(): boolean {
    return !this.running && this.queued.length === 0;
  }

  /** Resolves once every change this workspace made before the call is durable (fsync(2)). */
  async sync(): Promise<void> {
    // Commands still queued are part of "before": wait for their appends first (not for those
    // queued after the call: writers that keep writing would hold an fsync up for ever).
    if (this.queued.length > 0) this.run();
    await this.lastQueued.catch(() => undefined);
    await this.store.sync(this.project);
  }

  /** Content by hash: the L1 cache, else the store (concurrent misses share one read). Do not mutate the result. */
  readBlob(hash: string): Promise<Buffer> {
    const cached = this.blobs.get(hash);
    if (cached) {
      blobCacheHits.inc();
      return Promise.resolve(cached);
    }
    blobCacheMisses.inc();
    let loading = this.blobLoads.get(hash);
    if (!loading) {
      loading = this.store
        .getBlob(this.project, hash)
        .then((content) => {
          if (!content) throw new BlobNotFoundError(hash);
          this.blobs.set(hash, content);
          return content;
        })
        .finally(() => this.blobLoads.delete(hash));
      this.blobLoads.set(hash, loading);
    }
    return loading;
  }

  get cacheStats(): LruCache<string, Buffer>['stats'] {
    return this.blobs.stats;
  }

  /** A read-only view of the project as of `seq` (0 = empty). ENOENT past the head. Never evolve it. */
  stateAt(seq: number): Promise<ProjectState> {
    if (!Number.isSafeInteger(seq) || seq < 0) return Promise.reject(new DomainError('EINVAL', `invalid sequence ${seq}`));
    if (seq > this.head) return Promise.reject(new DomainError('ENOENT', `${formatProjectId(this.project)} has no event ${seq} yet (head ${this.head})`));
    let view = this.views.get(seq);
    if (!view) {
      const entry: { loading: Promise<ProjectState>; ready?: ProjectState } = {
        loading: restore(this.store, this.project, seq, this.onError).then((restored) => (entry.ready = restored.state)),
      };
      view = entry;
      this.views.set(seq, entry);
      entry.loading.catch(() => this.views.delete(seq));
    }
    return view.loading;
  }

  /** The view `stateAt(seq)` already restored, so hot paths (FUSE getattr) skip a promise hop; else undefined. */
  readyStateAt(seq: number): ProjectState | undefined {
    return this.views.get(seq)?.ready;
  }

  /** The last sequence recorded at or before `time`; 0 when the project is younger. */
  seqAt(time: Date): Promise<number> {
    const t = time.getTime();
    if (Number.isNaN(t)) return Promise.reject(new DomainError('EINVAL', 'invalid time'));
    if (this.head > 0 && Date.parse(this.current.time) <= t) return Promise.resolve(this.head);
    return seqAt(this.store, this.project, time, this.head);
  }

  /**
   * Refuses new commands, lets those already queued finish, stops following the tail and waits for
   * the snapshot in flight. Leaves the store open.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.resubscribeTimer);
    await this.subscription?.close();
    if (this.queued.length > 0) this.run();
    await this.lastQueued.catch(() => undefined);
    await this.catchingUp;
    await this.snapshots.idle();
    this.listeners.clear();
  }

  private async runQueued(): Promise<void> {
    try {
      while (this.queued.length > 0) {
        const batch = this.queued.splice(0, leadingBatch(this.queued, this.limits));
        // Settling twice is harmless; a command left unsettled would hang its caller.
        await this.executeBatch(batch).catch((error: unknown) => batch.forEach((item) => item.reject(error)));
      }
    } finally {
      this.running = false;
    }
  }

  /** Decides each command, appends what they decided as one, and settles each; never throws. */
  private async executeBatch(batch: QueuedCommand[]): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const live: Array<{ item: QueuedCommand; events: NewEvent[] }> = [];
      for (const item of batch) {
        try {
          const decided = decide(item.command, this.current, this.limits, Date.now(), item.actor);
          if (decided.length === 0) item.resolve([]);
          else live.push({ item, events: decided.map((event): NewEvent => ({ ...event, actor: item.actor })) });
        } catch (error) {
          item.reject(error);
        }
      }
      if (live.length === 0) return;
      const events = live.flatMap((l) => l.events);
      if (live.length > 1 && !fitTogether(this.current, this.limits, events)) {
        // Each alone gets its own answer: the ones that fit are written, the rest refused.
        for (const { item } of live) await this.executeBatch([item]);
        return;
      }
      const blobs = live.flatMap((l) => l.item.blobs ?? []);
      let failure: unknown;
      try {
        const recorded = await this.store.append(this.project, events, { expectedVersion: this.current.seq, durability: this.durability, ...(blobs.length > 0 ? { blobs } : {}) });
        this.apply(recorded);
        let at = 0;
        for (const l of live) l.item.resolve(recorded.slice(at, (at += l.events.length)));
        return;
      } catch (error) {
        failure = error;
      }
      if (failure instanceof ConcurrencyError && attempt < MAX_CONFLICT_RETRIES) {
        try {
          await this.catchUp();
          batch = live.map((l) => l.item);
          continue;
        } catch (error) {
          failure = error;
        }
      } else if (failure instanceof ConcurrencyError) {
        failure = new DomainError('EBUSY', `${formatProjectId(this.project)} kept changing under ${live[0]!.item.command.type}; gave up after ${attempt + 1} attempts`);
      }
      for (const l of live) l.item.reject(failure);
      return;
    }
  }

  /**
   * Reads what the store has beyond our head (other writers) and applies it, without waiting for
   * the tail. One at a time. A plugin taking a mount over from a live predecessor calls it before
   * serving, so the predecessor's last writes are there for the next read (ADR 0083).
   */
  catchUp(): Promise<void> {
    this.catchingUp ??= (async () => {
      for (;;) {
        const before = this.current.seq;
        const page = await this.store.read(this.project, { from: before + 1, limit: REPLAY_PAGE });
        this.apply(page);
        if (this.current.seq === before) return;
      }
    })().finally(() => {
      this.catchingUp = undefined;
    });
    return this.catchingUp;
  }

  /** Applies events in order, skipping those already applied (our own appends come back on the tail). */
  private apply(events: RecordedEvent[]): void {
    const fresh: RecordedEvent[] = [];
    for (const event of events) {
      if (event.seq <= this.current.seq) continue;
      if (event.seq !== this.current.seq + 1) {
        // A hole means we missed something; the store, not the tail, is the truth.
        this.catchUp().catch((error: unknown) => this.onError(error instanceof Error ? error : new Error(String(error))));
        break;
      }
      evolve(this.current, event);
      fresh.push(event);
    }
    this.notify(fresh);
  }

  private notify(events: RecordedEvent[]): void {
    if (events.length === 0) return;
    this.snapshots.observe(this.current);
    for (const listener of this.listeners) {
      try {
        listener(events);
      } catch (error) {
        this.onError(error instanceof Error ? error : new Error(String(error)));
      }
    }
  }
}
