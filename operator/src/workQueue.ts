import { refilled } from '@lighthouse-bridge/core';

/**
 * A rate-limited work queue in the manner of client-go's: a key is queued at most once, never
 * processed by two workers at once (a key added while in flight is processed again afterwards),
 * retried with per-key exponential backoff, and all keys share a token bucket so a relist of
 * thousands of objects does not flood the API server or Redis.
 */
export interface WorkQueueOptions {
  workers: number;
  /** Token bucket: sustained rate and burst of items started per second. */
  ratePerSecond: number;
  burst: number;
  baseBackoffMs: number;
  maxBackoffMs: number;
}

export const DEFAULT_QUEUE_OPTIONS: WorkQueueOptions = { workers: 4, ratePerSecond: 50, burst: 100, baseBackoffMs: 250, maxBackoffMs: 60_000 };

/** What a handler asks for after a run. */
export type Outcome = { kind: 'done' } | { kind: 'requeueAfter'; ms: number } | { kind: 'retry'; error: unknown };

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly inFlight = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private tokens: number;
  private lastRefill = performance.now();
  private running = 0;
  private stopped = false;
  private wake: NodeJS.Timeout | undefined;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly handler: (key: string) => Promise<Outcome>,
    private readonly onError: (key: string, error: unknown, attempt: number) => void,
    private readonly options: WorkQueueOptions = DEFAULT_QUEUE_OPTIONS,
  ) {
    this.tokens = options.burst;
  }

  add(key: string): void {
    if (this.stopped) return;
    const timer = this.timers.get(key);
    if (timer) {
      clearTimeout(timer);
      this.timers.delete(key);
    }
    if (this.inFlight.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.queue.push(key);
    this.pump();
  }

  addAfter(key: string, ms: number): void {
    if (this.stopped || this.queued.has(key) || this.timers.has(key)) return;
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, ms);
    timer.unref();
    this.timers.set(key, timer);
  }

  /** Stops starting work and drops pending retries; resolves when running handlers have finished. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    if (this.wake) clearTimeout(this.wake);
    this.queue.length = 0;
    this.queued.clear();
    if (this.running > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  get length(): number {
    return this.queue.length;
  }

  private pump(): void {
    if (this.stopped) return;
    while (this.running < this.options.workers && this.queue.length > 0) {
      this.refill();
      if (this.tokens < 1) {
        if (!this.wake) {
          const ms = Math.ceil(((1 - this.tokens) / this.options.ratePerSecond) * 1000);
          this.wake = setTimeout(() => {
            this.wake = undefined;
            this.pump();
          }, ms);
        }
        return;
      }
      this.tokens -= 1;
      const key = this.queue.shift() as string;
      this.queued.delete(key);
      this.inFlight.add(key);
      this.running++;
      void this.process(key);
    }
  }

  private refill(): void {
    const now = performance.now();
    this.tokens = refilled(this.tokens, now - this.lastRefill, { perSecond: this.options.ratePerSecond, burst: this.options.burst });
    this.lastRefill = now;
  }

  private async process(key: string): Promise<void> {
    let outcome: Outcome;
    try {
      outcome = await this.handler(key);
    } catch (error) {
      outcome = { kind: 'retry', error };
    }
    this.inFlight.delete(key);
    this.running--;
    if (outcome.kind === 'retry') {
      const attempt = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, attempt);
      this.onError(key, outcome.error, attempt);
      const jitter = 0.8 + Math.random() * 0.4;
      this.addAfter(key, Math.min(this.options.maxBackoffMs, this.options.baseBackoffMs * 2 ** (attempt - 1)) * jitter);
    } else {
      this.failures.delete(key);
      if (outcome.kind === 'requeueAfter') this.addAfter(key, outcome.ms);
    }
    if (this.dirty.delete(key)) this.add(key);
    if (this.stopped && this.running === 0) {
      for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
    this.pump();
  }
}
