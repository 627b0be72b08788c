import type { ProjectId } from '../events/projectId.js';
import type { EventStore } from '../store/eventStore.js';
import { STORE_OUTCOME, eventsAppended, projectLabels, storeAppendDuration, storeReadDuration, type StoreOutcome } from './metrics.js';

/**
 * The store seam is the one place every append and read passes, whichever backend: timing it
 * here gives the store latency histograms (and the alert built on them) for every command that
 * opens a store, without each backend repeating it. Failed calls are timed too, under
 * `outcome="error"`.
 */
export function instrumentStore(store: EventStore): EventStore {
  const labels = { backend: store.kind };
  const timed = async <T>(histogram: typeof storeReadDuration, work: () => Promise<T>, project?: ProjectId): Promise<T> => {
    // Appends carry the project (the store-latency alerts join on it); reads stay fleet-wide.
    const end = histogram.startTimer(project === undefined ? labels : { ...labels, ...projectLabels(project) });
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
      const recorded = await timed(storeAppendDuration, () => store.append(project, events, options), project);
      eventsAppended.inc(labels, recorded.length);
      return recorded;
    },
    head: (project) => timed(storeReadDuration, () => store.head(project)),
    read: (project, options) => timed(storeReadDuration, () => store.read(project, options)),
    subscribe: (project, afterSeq, onEvents, onError) => store.subscribe(project, afterSeq, onEvents, onError),
    sync: (project) => store.sync(project),
    putBlob: (project, content) => timed(storeAppendDuration, () => store.putBlob(project, content), project),
    getBlob: (project, hash) => timed(storeReadDuration, () => store.getBlob(project, hash)),
    saveSnapshot: (project, snapshot) => store.saveSnapshot(project, snapshot),
    loadSnapshot: (project, atOrBefore) => store.loadSnapshot(project, atOrBefore),
    ping: () => store.ping(),
    ...(store.logRegression ? { logRegression: store.logRegression.bind(store) } : {}),
    close: () => store.close(),
  };
}
