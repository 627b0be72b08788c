import { createHash } from 'node:crypto';
import type { ProjectId } from '../events/projectId.js';
import type { RedisClient } from '../redis/client.js';
import { projectKeys, type ProjectKeys } from '../redis/keys.js';
import { cacheBytes, cacheRequests } from '../observability/metrics.js';
import { CircuitBreaker } from '../resilience/circuitBreaker.js';
import { LruCache } from '../cache/lruCache.js';
import type { Tier } from './request.js';

/** A final decision worth reusing: what a rule, the risk scorer or the expert said. */
export interface CachedDecision {
  decision: 'allow' | 'deny';
  reason: string;
  rule?: string;
  /** The tier that originally decided. */
  source: Tier;
}

/**
 * The cache key: policy version, tool, the agent's class under the policy and the WHOLE input in
 * canonical form. Keying on less (the old system used tool + path) let a harmless and a dangerous
 * edit of the same file share one answer.
 */
export function decisionKey(policyVersion: string, tool: string, agentClass: string, canonicalInput: string): string {
  return createHash('sha256').update(policyVersion).update('\0').update(tool).update('\0').update(agentClass).update('\0').update(canonicalInput).digest('hex');
}

/** L1: this process's decisions, bounded in bytes, reporting its size as `cache_bytes{tier="decision-l1"}`. */
export class LocalDecisionCache {
  private readonly lru: LruCache<string, CachedDecision>;

  constructor(maxBytes: number) {
    // Strings are UTF-16 in V8; 224 bytes covers the 64-character key, the entry object and its Map slot.
    this.lru = new LruCache(maxBytes, (v) => 224 + 2 * (v.reason.length + (v.rule?.length ?? 0)));
  }

  get(key: string): CachedDecision | undefined {
    const hit = this.lru.get(key);
    cacheRequests.inc({ tier: 'decision-l1', result: hit ? 'hit' : 'miss' });
    return hit;
  }

  set(key: string, value: CachedDecision): void {
    this.lru.set(key, value);
    cacheBytes.set({ tier: 'decision-l1' }, this.lru.stats.bytes);
  }
}

/** L2: decisions shared by every process of the project through Redis, with a TTL. */
export class RedisDecisionCache {
  private readonly keys: ProjectKeys;

  constructor(
    private readonly redis: RedisClient,
    project: ProjectId,
    private readonly ttlSeconds: number,
    private readonly breaker: CircuitBreaker,
  ) {
    this.keys = projectKeys(project);
  }

  /** Undefined on a miss; throws when Redis cannot answer (or its breaker is open). */
  async get(key: string): Promise<CachedDecision | undefined> {
    const text = await this.breaker.run(() => this.redis.get(this.keys.decision(key)));
    const hit = text === null ? undefined : parseCached(text);
    cacheRequests.inc({ tier: 'decision-l2', result: hit ? 'hit' : 'miss' });
    return hit;
  }

  async set(key: string, value: CachedDecision): Promise<void> {
    await this.breaker.run(() => this.redis.set(this.keys.decision(key), JSON.stringify(value), 'EX', this.ttlSeconds));
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}

function parseCached(text: string): CachedDecision | undefined {
  try {
    const v = JSON.parse(text) as Partial<CachedDecision>;
    if ((v.decision === 'allow' || v.decision === 'deny') && typeof v.reason === 'string' && typeof v.source === 'string') return v as CachedDecision;
  } catch {
    // A foreign or corrupt value is a miss; the policy answers and overwrites it.
  }
  return undefined;
}
