import type { NewEvent, RecordedEvent } from '../events/events.js';
import type { ProjectId } from '../events/projectId.js';

/**
 * The one seam between the project and where its history lives. Two backends implement it
 * (embedded segment files, Redis Streams) and both must pass `core/src/testing/eventStoreContract.ts`.
 */
export interface EventStore {
  /** `embedded` or `redis`; shown in `/.bridge/status`. */
  readonly kind: StoreKind;
  /** Where it points, without credentials. */
  readonly location: string;

  /**
   * Appends `events` atomically: all or none, with consecutive sequence numbers. With
   * `expectedVersion`, the append happens only if the project's head is exactly that sequence
   * (0 = empty project), else it throws `ConcurrencyError` and nothing is written. Resolves once
   * the events are durable (embedded: fsync'd; Redis: acknowledged by the server), or with
   * `durability: 'visible'` once every reader can see them and a crash of this process cannot lose
   * them (embedded: written to the log file, fsync under way; Redis: acknowledged, as before).
   */
  append(project: ProjectId, events: readonly NewEvent[], options?: AppendOptions): Promise<RecordedEvent[]>;

  /**
   * Resolves once everything this store appended or stored for `project` before the call is
   * durable: what fsync(2) of a mount waits for. Immediate on Redis, where the acknowledgement is
   * the durability the server is configured to give.
   */
  sync(project: ProjectId): Promise<void>;

  /** The sequence number of the last event, 0 when the project has none. */
  head(project: ProjectId): Promise<number>;

  /** Events with `from <= seq <= to` in ascending order, at most `limit` of them. */
  read(project: ProjectId, options?: ReadOptions): Promise<RecordedEvent[]>;

  /**
   * Live tail: calls `onEvents` with every event after `afterSeq`, in order, each exactly once,
   * including those appended by other processes or nodes, until `close()`. Errors that stop the
   * tail go to `onError`; transient ones are retried inside.
   */
  subscribe(
    project: ProjectId,
    afterSeq: number,
    onEvents: (events: RecordedEvent[]) => void,
    onError?: (error: Error) => void,
  ): Subscription;

  /** Stores content by its sha256 (lowercase hex), which it returns. Idempotent. Durable as `append`. */
  putBlob(project: ProjectId, content: Uint8Array): Promise<string>;
  /** The content with that sha256, or undefined when there is none. */
  getBlob(project: ProjectId, hash: string): Promise<Buffer | undefined>;

  /** Stores a snapshot atomically; several may be kept, each for its own `seq`. */
  saveSnapshot(project: ProjectId, snapshot: Snapshot): Promise<void>;
  /** The snapshot with the greatest `seq <= atOrBefore` (default: the latest), if any. */
  loadSnapshot(project: ProjectId, atOrBefore?: number): Promise<Snapshot | undefined>;

  /** Resolves when the backend answers; throws `StoreUnavailableError` otherwise. */
  ping(): Promise<void>;
  /**
   * Set once the backend showed the project's log shorter than this store had already seen it
   * (Redis restarted without persistence): events it acknowledged are gone, and it refuses to
   * append there (`LogRegressedError`) so no sequence number is handed out twice.
   */
  logRegression?(project: ProjectId): LogRegression | undefined;
  close(): Promise<void>;
}

export type StoreKind = 'embedded' | 'redis';

/**
 * When a write resolves: `durable` (default) once it survives a power cut; `visible` once every
 * reader sees it and only a crash of the machine, not of the process, could lose it (ADR 0081).
 */
export type Durability = 'durable' | 'visible';

/** Content and its sha256 (lowercase hex), which the caller already computed to name it in an event. */
export interface HashedBlob {
  hash: string;
  content: Uint8Array;
}

export interface AppendOptions {
  expectedVersion?: number;
  durability?: Durability;
  /**
   * The store time to record (RFC 3339) instead of the store's clock: for `importProject`, so a
   * moved project keeps its history by time. Never recorded earlier than the previous event's time
   * (the same floor the clock gets), so time still never decreases along seq.
   */
  time?: string;
  /**
   * Content the events name by hash, stored before them: an append is never recorded without the
   * blobs it brings. Redis sends them in the same round trip as the append, and its append script
   * refuses an append whose blob is not there (StoreUnavailableError); the embedded store writes
   * them first, with the append's durability. The hash is taken as given (every read checks
   * content against its hash, so a wrong one is refused, never served).
   */
  blobs?: readonly HashedBlob[];
}

export interface ReadOptions {
  /** First sequence number wanted; default 1. */
  from?: number;
  /** Last sequence number wanted, inclusive; default the head. */
  to?: number;
  /** Default 1000. */
  limit?: number;
}

export interface Subscription {
  close(): Promise<void>;
  /**
   * True while the subscription waits on purpose before reading on (a busy Redis log is read a
   * batch at a time): an event appended meanwhile reaches the subscriber up to that wait later.
   */
  readonly gathering?: boolean;
}

/** A serialized projection state as of event `seq` (whose time was `time`). */
export interface Snapshot {
  seq: number;
  time: string;
  data: Uint8Array;
}

/** `options.time` in ms since the epoch, or undefined for the store's clock; RangeError when it is not a time. */
export function givenTimeMs(options: AppendOptions): number | undefined {
  if (options.time === undefined) return undefined;
  const ms = Date.parse(options.time);
  if (!Number.isSafeInteger(ms) || ms < 0) throw new RangeError(`append: "${options.time}" is not an RFC 3339 time`);
  return ms;
}

export class ConcurrencyError extends Error {
  override readonly name = 'ConcurrencyError';
  constructor(
    readonly expected: number,
    readonly actual: number,
  ) {
    super(`expected project version ${expected} but it is ${actual}`);
  }
}

/** The backend cannot be reached or refused to work (I/O error, lock held, connection lost). */
export class StoreUnavailableError extends Error {
  override readonly name: string = 'StoreUnavailableError';
}

/** The store answered, and refused: these credentials may not do this (a project's own Redis user is read-only, ADR 0062). */
export class StoreForbiddenError extends StoreUnavailableError {
  override readonly name = 'StoreForbiddenError';
}

/** What `logRegression` reports: the highest head seen, the lower one the backend then showed, and when. */
export interface LogRegression {
  knownHead: number;
  storeHead: number;
  since: string;
}

/** An append refused because the project's log went backwards in the backend (see `logRegression`). */
export class LogRegressedError extends StoreUnavailableError {}

/** A store URL that cannot be used. */
export class StoreUrlError extends Error {
  override readonly name = 'StoreUrlError';
}
