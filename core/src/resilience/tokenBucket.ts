export interface RateLimit {
  /** Tokens added per second. */
  perSecond: number;
  /** Bucket size: how many requests may come at once after a quiet spell. */
  burst: number;
}

/** A bucket's tokens `elapsedMs` after it held `tokens`: refilled lazily at the limit's rate, never past its burst. */
export function refilled(tokens: number, elapsedMs: number, limit: RateLimit): number {
  return Math.min(limit.burst, tokens + (elapsedMs / 1000) * limit.perSecond);
}

/**
 * One token bucket per key (agent). Refill is computed lazily from the elapsed time, so there is
 * no timer. Buckets that are full again are forgotten once the map grows past `maxKeys`, which
 * bounds memory when agent ids churn without changing anyone's allowance.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly limit: RateLimit,
    private readonly now: () => number = () => performance.now(),
    private readonly maxKeys = 10_000,
  ) {
    if (!(limit.perSecond > 0) || !(limit.burst >= 1)) throw new RangeError('rate limit needs perSecond > 0 and burst >= 1');
  }

  /** Takes one token for `key`; false when its bucket is empty. */
  take(key: string): boolean {
    const t = this.now();
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      if (this.buckets.size >= this.maxKeys) this.forgetFull(t);
      bucket = { tokens: this.limit.burst, at: t };
      this.buckets.set(key, bucket);
    } else {
      bucket.tokens = refilled(bucket.tokens, t - bucket.at, this.limit);
      bucket.at = t;
    }
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  private forgetFull(t: number): void {
    for (const [key, b] of this.buckets) {
      if (refilled(b.tokens, t - b.at, this.limit) >= this.limit.burst) this.buckets.delete(key);
    }
  }
}
