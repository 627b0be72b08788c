import type { EventStore } from '../store/eventStore.js';
import { STORE_OUTCOME, eventsAppended, storeAppendDuration, storeReadDuration, type StoreOutcome } from './metrics.js';

/**
 * The store seam is the one place every append and read passes, whichever backend: timing it
 * here gives the store latency histograms (and the alert built on them) for every command that
 * opens a store, without each backend repeating it. Failed calls are timed too, under
 * `outcome="error"`.
 */
export function instrumentStore(store: EventStore): EventStore {
  const labels = { backend: store.kind };
  const timed = async <T>(histogram: typeof storeReadDuration, work: () => Promise<T>): Promise<T> => {
    const end = histogram.startTimer(labels);
    let outcome: StoreOutcome = STORE_OUTCOME.error;
    try {
      const result = await work();
      outcome = STORE_OUTCOME.ok;
      return result;
    } finally {
      end({ outcome });
    }
  };
  return {
    kind: store.kind,
    location: store.location,
    append: async (project, events, options) => {
      const recorded = await timed(storeAppendDuration, () => store.append(project, events, options));
      eventsAppended.inc(labels, recorded.length);
      return recorded;
    },
    head: (project) => timed(storeReadDuration, () => store.head(project)),
    read: (project, options) => timed(storeReadDuration, () => store.read(project, options)),
    subscribe: (project, afterSeq, onEvents, onError) => store.subscribe(project, afterSeq, onEvents, onError),
    putBlob: (project, content) => timed(storeAppendDuration, () => store.putBlob(project, content)),
    getBlob: (project, hash) => timed(storeReadDuration, () => store.getBlob(project, hash)),
    saveSnapshot: (project, snapshot) => store.saveSnapshot(project, snapshot),
    loadSnapshot: (project, atOrBefore) => store.loadSnapshot(project, atOrBefore),
    ping: () => store.ping(),
    ...(store.logRegression ? { logRegression: store.logRegression.bind(store) } : {}),
    close: () => store.close(),
  };
}
