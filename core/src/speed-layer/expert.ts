import type { RecordedEvent, ValidationDecided } from '../events/events.js';
import type { ProjectId } from '../events/projectId.js';
import type { EventStore, Subscription } from '../store/eventStore.js';
import type { Logger } from '../observability/logger.js';
import type { CircuitBreaker } from '../resilience/circuitBreaker.js';
import type { ValidationRequest } from './request.js';

export type ExpertOutcome =
  | { kind: 'decided'; decision: 'allow' | 'deny'; reason: string; by: string }
  | { kind: 'deadline' };

/** How long after its own deadline decision is appended we wait to read back which decision came first. */
const SETTLE_MS = 5000;

/**
 * The expert tier: a request becomes a `ValidationRequested` event on the project's log and the
 * answer is the first `ValidationDecided` for it, from whoever watches the log (`lighthouse-bridge
 * decide`, a UI, another agent). At the deadline this process appends the configured decision
 * itself, so the log records how every request ended; since decisions are read back from the log,
 * an expert racing the deadline cannot make two processes see different outcomes.
 */
export class ExpertTier {
  private store: Promise<EventStore> | undefined;
  private subscription: Promise<Subscription> | undefined;
  private readonly waiters = new Map<string, (d: ValidationDecided['data']) => void>();

  constructor(
    private readonly project: ProjectId,
    private readonly openStore: () => Promise<EventStore>,
    private readonly breaker: CircuitBreaker,
    private readonly log: Logger,
  ) {}

  /**
   * Appends the request and resolves with the outcome. Rejects only when the request could not be
   * recorded (store down, breaker open); the caller fails closed.
   */
  async escalate(requestId: string, request: ValidationRequest, deadlineMs: number, onDeadline: { decision: 'allow' | 'deny' }): Promise<ExpertOutcome> {
    const answered = new Promise<ValidationDecided['data']>((resolve) => this.waiters.set(requestId, resolve));
    try {
      // A store that hangs instead of failing must not hold the request past its deadline.
      await this.breaker.run(() =>
        withTimeout(
          (async () => {
            const store = await this.getStore();
            await this.ensureSubscribed(store);
            await store.append(this.project, [
              { type: 'ValidationRequested', actor: request.agent, data: { requestId, agent: request.agent, tool: request.tool, input: request.input, deadlineMs } },
            ]);
          })(),
          deadlineMs - Date.now(),
          'recording the request in the store timed out',
        ),
      );
    } catch (error) {
      this.waiters.delete(requestId);
      throw error;
    }

    const first = await raceTimeout(answered, deadlineMs - Date.now());
    if (first !== undefined) return decided(first);

    try {
      const store = await this.getStore();
      await withTimeout(
        store.append(this.project, [
          { type: 'ValidationDecided', actor: 'system', data: { requestId, decision: onDeadline.decision, reason: 'deadline passed without an expert decision', by: 'deadline' } },
        ]),
        SETTLE_MS,
        'recording the deadline decision timed out',
      );
    } catch (error) {
      this.log.warn('could not record the deadline decision', { requestId, error: (error as Error).message });
      this.waiters.delete(requestId);
      return { kind: 'deadline' };
    }
    const settled = await raceTimeout(answered, SETTLE_MS);
    this.waiters.delete(requestId);
    if (settled === undefined || settled.by === 'deadline') return { kind: 'deadline' };
    return decided(settled);
  }

  async close(): Promise<void> {
    const sub = this.subscription;
    this.subscription = undefined;
    if (sub !== undefined) await sub.then((s) => s.close()).catch(() => undefined);
    this.waiters.clear();
  }

  private getStore(): Promise<EventStore> {
    if (this.store === undefined) {
      this.store = this.openStore();
      this.store.catch(() => {
        this.store = undefined;
      });
    }
    return this.store;
  }

  /** One subscription for all requests, started at the head before the first request is appended. */
  private ensureSubscribed(store: EventStore): Promise<Subscription> {
    if (this.subscription === undefined) {
      const started = store.head(this.project).then((head) =>
        store.subscribe(
          this.project,
          head,
          (events) => this.onEvents(events),
          (error) => {
            this.log.warn('expert subscription stopped; it restarts with the next escalation', { error: error.message });
            if (this.subscription === started) this.subscription = undefined;
          },
        ),
      );
      this.subscription = started;
      started.catch(() => {
        if (this.subscription === started) this.subscription = undefined;
      });
    }
    return this.subscription;
  }

  private onEvents(events: RecordedEvent[]): void {
    for (const e of events) {
      if (e.type !== 'ValidationDecided') continue;
      const waiter = this.waiters.get(e.data.requestId);
      if (waiter === undefined) continue;
      // Only the first decision for a request counts; later ones find no waiter.
      this.waiters.delete(e.data.requestId);
      waiter(e.data);
    }
  }
}

function decided(d: ValidationDecided['data']): ExpertOutcome {
  return { kind: 'decided', decision: d.decision, reason: d.reason, by: d.by };
}

async function raceTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(resolve, Math.max(0, ms), undefined);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), Math.max(0, ms));
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
