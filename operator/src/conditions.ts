import type { Condition } from './bridgeProject.js';

/** A condition as a sub-reconciler observes it; the timestamps and generation are added when status is written. */
export type ObservedCondition = Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>;

/** What one sub-reconciler found: its condition, and the error to retry with backoff when it could not converge. */
export interface SubResult {
  condition: ObservedCondition;
  retry?: unknown;
}

/** Ready is True when every part is; otherwise it names the first part that is not (`RedisReady` gives `RedisNotReady`, `PolicyValid` `PolicyNotReady`) and carries all their messages. */
export function readyOf(parts: ObservedCondition[]): ObservedCondition {
  const failing = parts.filter((c) => c.status !== 'True');
  const first = failing[0];
  if (!first) return { type: 'Ready', status: 'True', reason: 'Reconciled', message: 'project is ready' };
  return { type: 'Ready', status: 'False', reason: `${first.type.replace(/(Ready|Valid)$/, '')}NotReady`, message: failing.map((c) => c.message).join('; ') };
}

/** `lastTransitionTime` moves only when a condition's status changes, as the Kubernetes API conventions ask. */
export function withTransitions(next: ObservedCondition[], previous: Condition[] | undefined, generation: number | undefined): Condition[] {
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  return next.map((c) => {
    const before = previous?.find((p) => p.type === c.type);
    const lastTransitionTime = before && before.status === c.status ? before.lastTransitionTime : now;
    return { ...c, ...(generation !== undefined ? { observedGeneration: generation } : {}), lastTransitionTime };
  });
}
