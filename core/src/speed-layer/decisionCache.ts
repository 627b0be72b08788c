import { createHash } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import type { ProjectId } from '../events/projectId.js';
import { projectKeyPrefix } from '../config/projectConfig.js';
import { parseStoreUrl } from '../store/open.js';
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
  private readonly prefix: string;

  constructor(
    private readonly redis: Redis | Cluster,
    project: ProjectId,
    private readonly ttlSeconds: number,
    private readonly breaker: CircuitBreaker,
  ) {
    this.prefix = `${projectKeyPrefix(project)}dec:`;
  }

  /** Undefined on a miss; throws when Redis cannot answer (or its breaker is open). */
  async get(key: string): Promise<CachedDecision | undefined> {
    const text = await this.breaker.run(() => this.redis.get(this.prefix + key));
    const hit = text === null ? undefined : parseCached(text);
    cacheRequests.inc({ tier: 'decision-l2', result: hit ? 'hit' : 'miss' });
    return hit;
  }

  async set(key: string, value: CachedDecision): Promise<void> {
    await this.breaker.run(() => this.redis.set(this.prefix + key, JSON.stringify(value), 'EX', this.ttlSeconds));
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

/**
 * A client that fails fast instead of queueing while Redis is away: the breaker, not a growing
 * queue of stalled requests, decides when to try again. It keeps reconnecting in the background.
 */
export function connectRedis(url: string, commandTimeoutMs: number, onConnectionError: (error: Error) => void = () => undefined): Redis | Cluster {
  const parsed = parseStoreUrl(url);
  if (parsed.kind !== 'redis') throw new TypeError(`decision cache needs a redis:// URL, not "${url}"`);
  const common = {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: commandTimeoutMs,
    retryStrategy: (attempt: number) => Math.min(50 * attempt, 1000),
    ...(parsed.username !== undefined ? { username: parsed.username } : {}),
    ...(parsed.password !== undefined ? { password: parsed.password } : {}),
    ...(parsed.tls ? { tls: {} } : {}),
  };
  const [node] = parsed.nodes;
  const client = parsed.cluster
    ? new Cluster(parsed.nodes, { enableOfflineQueue: false, clusterRetryStrategy: common.retryStrategy, redisOptions: common })
    : new Redis({ ...common, host: node?.host ?? '127.0.0.1', port: node?.port ?? 6379, db: parsed.db });
  // Connection errors during an outage are expected and reach callers as failed commands (and the
  // breaker); without a listener ioredis would print each reconnect attempt to the console.
  client.on('error', onConnectionError);
  return client;
}

/**
 * Waits (bounded) for the first connection, since a client that does not queue would fail every
 * request made before it. Not ready in time is not an error: the breaker handles a Redis that is away.
 */
export function whenReady(redis: Redis | Cluster, timeoutMs: number): Promise<boolean> {
  if (redis.status === 'ready') return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (ready: boolean): void => {
      clearTimeout(timer);
      redis.off('ready', onReady);
      resolve(ready);
    };
    const onReady = (): void => done(true);
    const timer = setTimeout(() => done(false), timeoutMs);
    redis.once('ready', onReady);
  });
}
