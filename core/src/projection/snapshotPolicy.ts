import { encodeSnapshot } from '../aggregate/snapshotCodec.js';
import type { ProjectState } from '../aggregate/state.js';
import type { ProjectId } from '../events/projectId.js';
import type { EventStore } from '../store/eventStore.js';

export const DEFAULT_SNAPSHOT_EVERY = 1000;

/**
 * Saves a snapshot whenever the state has moved far enough past the last one, in the background.
 * The state is encoded synchronously inside `observe` because it is evolved in place and would
 * have moved on by the time an async save ran; only the write is deferred. That encoding holds up
 * the thread that serves the mount for time in proportion to the tree (3-5 ms at 5,000 entries),
 * so "far enough" is `every` events or as many as the tree has entries, whichever is more, up to
 * ten times `every`: the encoding costs a bounded time per event however large the project, and
 * an open replays at most ten times `every` events past the snapshot. At most one save is in
 * flight; a failed save is reported and retried later, never blocking writers (snapshots only make
 * replay faster).
 */
export class SnapshotPolicy {
  private lastSeq: number;
  private inFlight: Promise<void> | undefined;

  constructor(
    private readonly store: EventStore,
    private readonly project: ProjectId,
    private readonly every: number,
    startSeq: number,
    private readonly onError: (error: Error) => void = () => {},
  ) {
    this.lastSeq = startSeq;
  }

  observe(state: ProjectState): void {
    if (this.every <= 0 || this.inFlight || state.seq - this.lastSeq < Math.max(this.every, Math.min(state.nodes.size, 10 * this.every))) return;
    this.lastSeq = state.seq;
    const snapshot = { seq: state.seq, time: state.time, data: encodeSnapshot(state) };
    this.inFlight = this.store
      .saveSnapshot(this.project, snapshot)
      .catch((error: unknown) => this.onError(error instanceof Error ? error : new Error(String(error))))
      .finally(() => {
        this.inFlight = undefined;
      });
  }

  /** Waits for the save in flight, if any. */
  async idle(): Promise<void> {
    await this.inFlight;
  }
}
