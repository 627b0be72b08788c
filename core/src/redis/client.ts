import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { redisTlsOptions } from './tls.js';
import type { RedisUrl } from './url.js';

export type RedisClient = Redis | Cluster;

const MAX_RECONNECT_DELAY_MS = 1_000;

/**
 * The options of each kind of client, in one place. Every kind queues nothing while Redis is away
 * unless it says otherwise, and every kind keeps reconnecting in the background.
 */
export const clientOptions = {
  /**
   * The event store's: a dead Redis is an error at once instead of a hang, and nothing is ever sent
   * twice: an append in flight when the connection drops is rejected (its outcome unknown to the
   * caller, who was never told it succeeded) rather than replayed after reconnecting, which could
   * record its events twice.
   */
  store(role: 'commands' | 'tail'): RedisOptions {
    return {
      connectTimeout: 1_000,
      // Also the bound on a hung (not dead) server; big blob MULTIs must fit in it on a busy machine.
      // XREAD BLOCK waits longer than any command timeout by design.
      ...(role === 'commands' ? { commandTimeout: 5_000 } : {}),
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      enableOfflineQueue: false,
      lazyConnect: true,
      // Its INFO is refused to project ACL users (and ioredis then warns on the console); a server
      // still loading answers LOADING, which fails that one call like any outage would.
      enableReadyCheck: false,
      keepAlive: 10_000,
      // No auto-pipelining: it holds every command back to the next turn of the event loop, a fifth
      // of a lone chmod's time here. The append queue batches appends and sends each batch's
      // commands in one write itself.
      retryStrategy: (times) => Math.min(times * 100, MAX_RECONNECT_DELAY_MS),
    };
  },
  /** The speed layer's: its circuit breaker, not a growing queue of stalled requests, decides when to try again. */
  failFast(commandTimeoutMs: number): RedisOptions {
    return {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: commandTimeoutMs,
      retryStrategy: (attempt) => Math.min(50 * attempt, MAX_RECONNECT_DELAY_MS),
    };
  },
  /** The operator's: reconcile reports Redis down and retries with backoff instead of piling commands up. */
  operator(): RedisOptions {
    return {
      connectTimeout: 2_000,
      commandTimeout: 5_000,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      retryStrategy: (times) => Math.min(100 * 2 ** times, 2_000),
      lazyConnect: false,
    };
  },
  /** The node plugin's mount registry: a lost write is retried by the next heartbeat, so none waits long. */
  mountRegistry(): RedisOptions {
    return { lazyConnect: true, maxRetriesPerRequest: 1, commandTimeout: 5_000 };
  },
  /** The node plugin's config reads: one retry, then the caller's deadline answers UNAVAILABLE. */
  configReader(): RedisOptions {
    return { lazyConnect: true, maxRetriesPerRequest: 1 };
  },
} as const;

/**
 * A client for `url` (one server or a Cluster, with its credentials and TLS for `rediss://`,
 * trusting LHB_REDIS_CA_FILE's CAs when set). Throws StoreUrlError when that file cannot be read.
 * Connection errors reach callers as failed commands; `onConnectionError` sees them too, since
 * without a listener ioredis prints each reconnect attempt to the console.
 */
export function createRedisClient(url: RedisUrl, options: RedisOptions, onConnectionError: (error: Error) => void = () => undefined): RedisClient {
  const perNode: RedisOptions = {
    ...options,
    ...(url.username !== undefined ? { username: url.username } : {}),
    ...(url.password !== undefined ? { password: url.password } : {}),
    ...(url.tls ? { tls: redisTlsOptions() } : {}),
  };
  let client: RedisClient;
  if (url.cluster) {
    // These are the Cluster's own options; in redisOptions ioredis would ignore them.
    const { retryStrategy, enableOfflineQueue, lazyConnect, ...node } = perNode;
    const cluster: ClusterOptions = {
      redisOptions: node,
      ...(enableOfflineQueue !== undefined ? { enableOfflineQueue } : {}),
      ...(lazyConnect !== undefined ? { lazyConnect } : {}),
      // Without it a restarted primary is never reconnected to; MOVED alone cannot heal that.
      clusterNodeRetryStrategy: retryStrategy ?? null,
      ...(retryStrategy !== undefined ? { clusterRetryStrategy: retryStrategy } : {}),
      ...(options.connectTimeout !== undefined ? { slotsRefreshTimeout: options.connectTimeout } : {}),
    };
    client = new Cluster(url.nodes, cluster);
  } else {
    client = new Redis({ ...perNode, host: url.nodes[0]?.host ?? '127.0.0.1', port: url.nodes[0]?.port ?? 6379, db: url.db });
  }
  client.on('error', onConnectionError);
  return client;
}

/**
 * Waits (bounded) for the first connection, since a client that does not queue would fail every
 * request made before it. Resolves false when not ready in time: the caller decides what that means.
 */
export function whenReady(redis: RedisClient, timeoutMs: number): Promise<boolean> {
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
