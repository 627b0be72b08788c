import type { BridgeProject } from './bridgeProject.js';
import type { KubeClient } from './kubeClient.js';
import type { Log } from './operator.js';

export type EventType = 'Normal' | 'Warning';

export interface ProjectEvent {
  type: EventType;
  /** UpperCamelCase, machine-readable: `InvalidPolicy`, `ConfigWritten` ... */
  reason: string;
  /** What the operator was doing: `Reconcile` or `Cleanup`. */
  action: string;
  note: string;
}

export interface EventRecorder {
  /** Posts in the background (an Event is never worth failing or slowing a reconcile); repeats of one reason for one object within the window are dropped. */
  record(bp: BridgeProject, event: ProjectEvent): void;
  /** Resolves when every post under way has finished. */
  flush(): Promise<void>;
}

export const REPORTING_CONTROLLER = 'bridge.lighthouse.dev/operator';
/** kubectl shows Events for an hour by default; one per reason per object per ten minutes keeps a flapping Redis from writing one per retry. */
export const EVENT_WINDOW_MS = 10 * 60_000;
/** The API refuses a note over 1 kB (bytes, not characters). */
const NOTE_MAX_BYTES = 1024;

/** Events in events.k8s.io/v1, in the project's namespace, regarding the BridgeProject. */
export function eventRecorder(kube: KubeClient, instance: string, log: Log, windowMs = EVENT_WINDOW_MS): EventRecorder {
  const lastSent = new Map<string, number>();
  const pending = new Set<Promise<void>>();
  return {
    record(bp, event) {
      const key = `${bp.metadata.uid}/${event.reason}`;
      const now = Date.now();
      const last = lastSent.get(key);
      if (last !== undefined && now - last < windowMs) return;
      lastSent.set(key, now);
      // Forget keys past their window so the map does not grow with every project ever seen.
      if (lastSent.size > 10_000) for (const [k, t] of lastSent) if (now - t >= windowMs) lastSent.delete(k);
      const post = kube
        .create(`/apis/events.k8s.io/v1/namespaces/${bp.metadata.namespace}/events`, eventBody(bp, event, instance, new Date(now)))
        .then(
          () => undefined,
          (error: unknown) => log('warn', 'could not write a Kubernetes Event', { project: `${bp.metadata.namespace}/${bp.metadata.name}`, reason: event.reason, error: error instanceof Error ? error.message : String(error) }),
        )
        .finally(() => pending.delete(post));
      pending.add(post);
    },
    async flush() {
      await Promise.all([...pending]);
    },
  };
}

function eventBody(bp: BridgeProject, event: ProjectEvent, instance: string, at: Date): Record<string, unknown> {
  const { name, namespace, uid, resourceVersion } = bp.metadata;
  return {
    apiVersion: 'events.k8s.io/v1',
    kind: 'Event',
    metadata: { generateName: `${name}-`, namespace },
    // MicroTime: six fractional digits.
    eventTime: at.toISOString().replace(/Z$/, '000Z'),
    reportingController: REPORTING_CONTROLLER,
    reportingInstance: instance.slice(0, 128),
    action: event.action,
    reason: event.reason,
    type: event.type,
    note: clip(event.note),
    regarding: { apiVersion: bp.apiVersion, kind: bp.kind, name, namespace, uid, resourceVersion },
  };
}

function clip(note: string): string {
  const bytes = Buffer.from(note, 'utf8');
  if (bytes.length <= NOTE_MAX_BYTES) return note;
  // A character cut in half decodes as U+FFFD; drop it. The ellipsis takes 3 bytes.
  return `${bytes.subarray(0, NOTE_MAX_BYTES - 3).toString('utf8').replace(/\uFFFD+$/, '')}…`;
}
