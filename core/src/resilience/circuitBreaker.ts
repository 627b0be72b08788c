import { breakerState, breakerTransitions } from '../observability/metrics.js';

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface CircuitBreakerOptions {
  /** Names the breaker in metrics and errors, e.g. `redis-l2`, `expert`. */
  name: string;
  /** Consecutive failures that open the breaker. */
  failureThreshold?: number;
  /** How long it stays open before letting one trial call through. */
  resetTimeoutMs?: number;
  now?: () => number;
}

/** Thrown instead of calling a dependency whose breaker is open. */
export class BreakerOpenError extends Error {
  override readonly name = 'BreakerOpenError';
  constructor(
    readonly breaker: string,
    readonly lastError: string | undefined,
  ) {
    super(`${breaker} unavailable (circuit open${lastError ? `: ${lastError}` : ''})`);
  }
}

const STATE_VALUE: Record<BreakerState, number> = { closed: 0, 'half-open': 1, open: 2 };

/**
 * Stops calling a dependency that keeps failing, so callers get an immediate answer instead of a
 * timeout each, and closes itself: after `resetTimeoutMs` one trial call goes through, and its
 * success closes the breaker. No background timer, so an idle breaker costs nothing.
 */
export class CircuitBreaker {
  readonly name: string;
  private readonly failureThreshold: number;
  private readonly resetTimeoutMs: number;
  private readonly now: () => number;
  private current: BreakerState = 'closed';
  private failures = 0;
  private openedAt = 0;
  private trialInFlight = false;
  private lastError: string | undefined;

  constructor(options: CircuitBreakerOptions) {
    this.name = options.name;
    this.failureThreshold = options.failureThreshold ?? 3;
    this.resetTimeoutMs = options.resetTimeoutMs ?? 1000;
    this.now = options.now ?? Date.now;
    breakerState.set({ breaker: this.name }, 0);
  }

  get state(): BreakerState {
    return this.current;
  }

  /** Whether a call would be attempted now (moves an expired open breaker to half-open). */
  allows(): boolean {
    if (this.current === 'open' && this.now() - this.openedAt >= this.resetTimeoutMs) this.transition('half-open');
    if (this.current === 'closed') return true;
    return this.current === 'half-open' && !this.trialInFlight;
  }

  async run<T>(call: () => Promise<T>): Promise<T> {
    if (!this.allows()) throw new BreakerOpenError(this.name, this.lastError);
    const trial = this.current === 'half-open';
    if (trial) this.trialInFlight = true;
    try {
      const result = await call();
      this.succeeded();
      return result;
    } catch (error) {
      this.failed(error);
      throw error;
    } finally {
      if (trial) this.trialInFlight = false;
    }
  }

  private succeeded(): void {
    this.failures = 0;
    this.lastError = undefined;
    if (this.current !== 'closed') this.transition('closed');
  }

  private failed(error: unknown): void {
    this.lastError = error instanceof Error ? error.message : String(error);
    this.failures += 1;
    if (this.current === 'half-open' || (this.current === 'closed' && this.failures >= this.failureThreshold)) {
      this.openedAt = this.now();
      this.transition('open');
    }
  }

  private transition(to: BreakerState): void {
    this.current = to;
    breakerTransitions.inc({ breaker: this.name, to });
    breakerState.set({ breaker: this.name }, STATE_VALUE[to]);
  }
}
