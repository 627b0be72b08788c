import { evolve } from '../aggregate/evolve.js';
import { initialState } from '../aggregate/initialState.js';
import { decodeSnapshot } from '../aggregate/snapshotCodec.js';
import type { ProjectState } from '../aggregate/state.js';
import { formatProjectId, type ProjectId } from '../events/projectId.js';
import type { EventStore } from '../store/eventStore.js';

/** Events are read this many at a time, so replay memory is one page plus the state. */
export const REPLAY_PAGE = 5000;

/**
 * Applies every stored event after `state.seq`, up to `to` inclusive (default: the head as it is
 * when the reads run), to `state` in place. Returns the state.
 */
export async function replayInto(store: EventStore, project: ProjectId, state: ProjectState, to?: number): Promise<ProjectState> {
  for (;;) {
    const from = state.seq + 1;
    if (to !== undefined && from > to) return state;
    const page = await store.read(project, to === undefined ? { from, limit: REPLAY_PAGE } : { from, to, limit: REPLAY_PAGE });
    if (page.length === 0) return state;
    for (const event of page) {
      if (event.seq === state.seq + 1) evolve(state, event);
    }
    if (state.seq < from) throw new Error(`store returned events from ${page[0]?.seq} when ${from} was asked for`);
  }
}

/**
 * The project as of event `seq` (or the latest event when the store has fewer): the nearest
 * snapshot at or before it, plus replay.
 */
export async function stateAt(store: EventStore, project: ProjectId, seq?: number): Promise<ProjectState> {
  return (await restore(store, project, seq)).state;
}

/** The state just before event `seq`: the initial state for seq 1 (no store call), else `stateAt(seq - 1)`. */
export function stateBefore(store: EventStore, project: ProjectId, seq: number): Promise<ProjectState> {
  return seq <= 1 ? Promise.resolve(initialState()) : stateAt(store, project, seq - 1);
}

/**
 * `stateAt`, also telling which snapshot it started from (0: none) so a caller can decide when the
 * next one is due. A snapshot only makes replay faster while the log holds the truth, so one that
 * cannot be loaded or read (damaged, half pruned, from another version) is reported to
 * `onSnapshotSkipped` and replaced by a full replay: slower, never wrong. An unreachable store
 * fails the replay that follows with its own error.
 */
export async function restore(
  store: EventStore,
  project: ProjectId,
  seq?: number,
  onSnapshotSkipped: (error: Error) => void = (error) => process.emitWarning(error),
): Promise<{ state: ProjectState; snapshotSeq: number }> {
  let state = initialState();
  try {
    const snapshot = await store.loadSnapshot(project, seq);
    if (snapshot && (seq === undefined || snapshot.seq <= seq)) state = decodeSnapshot(snapshot.data);
  } catch (error) {
    onSnapshotSkipped(new Error(`${formatProjectId(project)}: snapshot skipped, replaying the log in full: ${error instanceof Error ? error.message : String(error)}`, { cause: error }));
  }
  const snapshotSeq = state.seq;
  return { state: await replayInto(store, project, state, seq), snapshotSeq };
}

/**
 * The largest sequence whose store time is at or before `time`; 0 when none is. Store times never
 * decrease along seq, so a binary search over single-event reads needs only log2(head) reads.
 */
export async function seqAt(store: EventStore, project: ProjectId, time: Date, head?: number): Promise<number> {
  const target = time.getTime();
  if (Number.isNaN(target)) throw new RangeError('invalid time');
  let lo = 0; // known: time(lo) <= target (seq 0 stands for "before everything")
  let hi = (head ?? (await store.head(project))) + 1; // known: time(hi) > target, or past the end
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    const [event] = await store.read(project, { from: mid, to: mid, limit: 1 });
    if (event && Date.parse(event.time) <= target) lo = mid;
    else hi = mid;
  }
  return lo;
}
