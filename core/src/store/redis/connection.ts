import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { ConcurrencyError, StoreUnavailableError } from '../eventStore.js';
import type { StoreUrl } from '../open.js';

export type RedisStoreUrl = Extract<StoreUrl, { kind: 'redis' }>;
export type RedisClient = Redis | Cluster;

const CONNECT_TIMEOUT_MS = 1_000;
/** Also the bound on a hung (not dead) server; big blob MULTIs must fit in it on a busy machine. */
const COMMAND_TIMEOUT_MS = 5_000;
const OPEN_TIMEOUT_MS = 3_000;
const MAX_RECONNECT_DELAY_MS = 1_000;

/**
 * Options chosen so a dead Redis is an error at once instead of a hang, and so nothing is ever
 * sent twice: an append in flight when the connection drops is rejected (its outcome unknown to
 * the caller, who was never told it succeeded) rather than silently replayed after reconnecting,
 * which could record its events twice. Reconnection itself goes on for ever in the background.
 */
function redisOptions(url: RedisStoreUrl, role: 'commands' | 'tail'): RedisOptions {
  return {
    connectTimeout: CONNECT_TIMEOUT_MS,
    // XREAD BLOCK waits longer than any command timeout by design.
    ...(role === 'commands' ? { commandTimeout: COMMAND_TIMEOUT_MS } : {}),
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    enableOfflineQueue: false,
    lazyConnect: true,
    // Its INFO is refused to project ACL users (and ioredis then warns on the console); a server
    // still loading answers LOADING, which fails that one call like any outage would.
    enableReadyCheck: false,
    keepAlive: 10_000,
    // Many concurrent appends share one round trip instead of each waiting for its own.
    enableAutoPipelining: role === 'commands',
    retryStrategy: (times) => Math.min(times * 100, MAX_RECONNECT_DELAY_MS),
    ...(url.username !== undefined ? { username: url.username } : {}),
    ...(url.password !== undefined ? { password: url.password } : {}),
    ...(url.tls ? { tls: {} } : {}),
  };
}

/** A connected client, or `StoreUnavailableError` within a few seconds. */
export async function connectRedis(url: RedisStoreUrl, role: 'commands' | 'tail'): Promise<RedisClient> {
  const base = redisOptions(url, role);
  let client: RedisClient;
  if (url.cluster) {
    const { retryStrategy: nodeRetry, enableOfflineQueue, lazyConnect, enableAutoPipelining, ...perNode } = base;
    const options: ClusterOptions = {
      redisOptions: perNode,
      enableOfflineQueue,
      lazyConnect,
      enableAutoPipelining,
      // Without it a restarted primary is never reconnected to; MOVED alone cannot heal that.
      clusterNodeRetryStrategy: nodeRetry ?? null,
      clusterRetryStrategy: (times) => Math.min(times * 100, MAX_RECONNECT_DELAY_MS),
      slotsRefreshTimeout: CONNECT_TIMEOUT_MS,
    };
    client = new Cluster(url.nodes, options);
  } else {
    client = new Redis({ ...base, host: url.nodes[0]?.host ?? '127.0.0.1', port: url.nodes[0]?.port ?? 6379, db: url.db });
  }
  // Errors surface through the rejected commands; without a listener ioredis logs each one. The
  // socket's own error (ECONNREFUSED, WRONGPASS) says more than connect()'s "Connection is closed".
  let socketError: unknown;
  client.on('error', (error: unknown) => (socketError ??= error));
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      // Without the ready check, connect() resolves before AUTH is answered; PING proves both.
      client.connect().then(() => client.ping()),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${OPEN_TIMEOUT_MS} ms`)), OPEN_TIMEOUT_MS);
      }),
    ]);
  } catch (error) {
    client.disconnect();
    throw unavailable(url, 'connect', socketError ?? error);
  } finally {
    clearTimeout(timer);
  }
  return client;
}

/** `redis://host:port/db` or `redis+cluster://h1:p1,...`, never with credentials. */
export function describeLocation(url: RedisStoreUrl): string {
  const hosts = url.nodes.map((n) => `${n.host.includes(':') ? `[${n.host}]` : n.host}:${n.port}`).join(',');
  if (url.cluster) return `redis+cluster://${hosts}`;
  return `${url.tls ? 'rediss' : 'redis'}://${hosts}/${url.db}`;
}

/** The one place Redis and network errors become store errors. */
export function unavailable(url: RedisStoreUrl, what: string, error: unknown): Error {
  if (error instanceof ConcurrencyError || error instanceof StoreUnavailableError) return error;
  const message = error instanceof Error ? error.message : String(error);
  // A project's own credentials only read (ADR 0062); say so rather than leave a bare NOPERM.
  const hint = /\bNOPERM\b/.test(message) ? ' (these credentials may not do this; a project\'s own credentials are read-only: write through a mount)' : '';
  return new StoreUnavailableError(`Redis ${describeLocation(url)}: ${what} failed: ${message}${hint}`, { cause: error });
}

/**
 * The code (`WRONGPASS`, `NOPERM`, ...) of the Redis reply error behind `error`, also when it is
 * wrapped by `unavailable` (as connect failures are): the wrapped message starts with the location.
 */
export function replyCode(error: unknown): string | undefined {
  for (let current = error, depth = 0; current instanceof Error && depth < 4; current = current.cause, depth++) {
    if (current.name === 'ReplyError') return /^[A-Z]+/.exec(current.message)?.[0];
  }
  return undefined;
}
