import { Cluster, type Redis } from 'ioredis';
import { parseStoreUrl, type ProjectConfig, type ProjectId } from '@lighthouse-bridge/core';
import {
  clientOptions,
  countLiveMounts,
  createRedisClient,
  projectKeyPrefix,
  projectKeys,
  whenReady,
  type RedisClient,
} from '@lighthouse-bridge/core/redis';

/**
 * The operator's side of Redis: per-project ACL users, the `:config` key, the figures shown in
 * status, and removal of a project's keys. Works on one Redis and on a Redis Cluster; ACLs are
 * per node in a cluster, so they are applied to every primary and replica.
 */
export interface ProjectRedis {
  /**
   * Creates or resets an ACL user of the project with this password, on every node: its reader
   * (the default), or the writer a restore Job imports with.
   */
  ensureUser(project: ProjectId, user: string, password: string, role?: AclRole): Promise<void>;
  /** Idempotent: a user already gone is not an error. */
  deleteUser(user: string): Promise<void>;
  /** Every ACL user name on any node. */
  users(): Promise<string[]>;
  /** Resolves true when the stored config was different (or absent). */
  writeConfig(project: ProjectId, config: ProjectConfig): Promise<boolean>;
  /** The `generation` of the config nodes read now; undefined when none was written. */
  configGeneration(project: ProjectId): Promise<number | undefined>;
  stats(project: ProjectId): Promise<{ head: number; activeMounts: number }>;
  /** UNLINKs every key of the project; returns how many. */
  purge(project: ProjectId): Promise<number>;
  /** Resolves true once connected, false after `timeoutMs` (the caller goes on; reconciles then report Redis down). */
  waitReady(timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}

/** Redis refused or could not be reached; reconcile reports it as RedisReady=False. */
export class RedisUnavailableError extends Error {
  override readonly name = 'RedisUnavailableError';
}

/**
 * The project's user only reads (ADR 0062). Redis checks ACL command rules inside scripts too, so
 * a user that may run a write through one of our scripts may also run it directly, with any size
 * or offset: no ACL bounds what a tenant writes. Every write to a project's keys therefore goes
 * through the node plugin and operator, whose code enforces the limits, and the credentials in
 * the project's Secret (readable by anyone in the namespace) only read. An allow-list, not
 * categories minus exceptions: each command here was chosen, so a new Redis command is denied
 * until someone decides otherwise.
 */
export const ACL_COMMANDS = [
  'nocommands',
  // Connecting, and finding the way around a Cluster (ioredis); no SELECT, INFO, CLIENT KILL/LIST/TRACKING.
  '+ping', '+echo', '+hello', '+quit', '+client|id', '+client|getname', '+client|setname', '+client|info',
  '+readonly', '+readwrite', '+asking', '+cluster|slots', '+cluster|shards', '+cluster|nodes', '+cluster|info',
  // What the store, decision cache and mount registry read (core/src/store/redis), and redis-cli looks.
  '+get', '+mget', '+strlen', '+getrange', '+exists', '+type', '+ttl', '+pttl',
  '+hget', '+hmget', '+hgetall', '+hlen', '+hexists', '+hkeys',
  '+xrange', '+xrevrange', '+xread', '+xlen',
  '+zrange', '+zrevrange', '+zrangebyscore', '+zrevrangebyscore', '+zcard', '+zscore',
  '+smembers', '+scard', '+llen', '+lrange',
  // Its own channels only (`&` pattern); PUBLISH is a write.
  '+subscribe', '+unsubscribe', '+psubscribe', '+punsubscribe', '+ssubscribe', '+sunsubscribe',
];

export type AclRole = 'reader' | 'restorer';

export function aclRules(project: ProjectId, password: string, role: AclRole = 'reader'): string[] {
  const prefix = projectKeyPrefix(project);
  const keys = projectKeys(project);
  // `reset` first, so a re-apply also removes anything granted by hand or by an older operator;
  // `resetchannels` because `reset` grants all channels where acl-pubsub-default is allchannels.
  const base = ['reset', 'resetchannels', 'on', `>${password}`, `&${prefix}*`];
  // `%R~`: read access to its own keys only (Redis 7), whatever command is allowed.
  if (role === 'reader') return [...base, `%R~${prefix}*`, ...ACL_COMMANDS];
  // The restorer runs the store's own writer (scripts, streams, blobs) for as long as the Job runs
  // (ADR 0065), nothing server-wide (-@admin -@dangerous). Its Secret sits in the tenant's
  // namespace, so it writes only what an import writes: the log, snapshots and blobs — never the
  // shared decisions, the config the operator owns or the mount registry.
  const written = [keys.log, `${keys.snapshots}*`, `${prefix}snap:*`, keys.blob('*')];
  return [...base, `%R~${prefix}*`, ...written.map((key) => `~${key}`), '+@all', '-@admin', '-@dangerous'];
}

const SCAN_COUNT = 500;
const UNLINK_BATCH = 200;

export function connectProjectRedis(url: string): ProjectRedis {
  const parsed = parseStoreUrl(url);
  if (parsed.kind !== 'redis') throw new RedisUnavailableError(`operator needs a Redis URL, got "${url}"`);
  // Errors surface on the commands.
  const client = createRedisClient(parsed, clientOptions.operator());

  const nodes = (role: 'all' | 'master'): Redis[] => (client instanceof Cluster ? client.nodes(role) : [client]);

  const guard = async <T>(what: string, work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (error) {
      throw new RedisUnavailableError(`${what}: ${error instanceof Error ? error.message : String(error)}`);
    }
  };

  return {
    ensureUser: (project, user, password, role) =>
      guard(`ACL SETUSER ${user}`, async () => {
        const targets = nodes('all');
        if (targets.length === 0) throw new Error('no Redis node reachable');
        await Promise.all(targets.map((node) => node.call('ACL', 'SETUSER', user, ...aclRules(project, password, role))));
        await Promise.all(targets.map((node) => saveAcl(node)));
      }),
    deleteUser: (user) =>
      guard(`ACL DELUSER ${user}`, async () => {
        const targets = nodes('all');
        if (targets.length === 0) throw new Error('no Redis node reachable');
        // Runs on every DELETED event and relist of a gone project: rewrite the ACL file only where something went.
        await Promise.all(targets.map(async (node) => ((await node.call('ACL', 'DELUSER', user)) === 0 ? undefined : saveAcl(node))));
      }),
    users: () =>
      guard('ACL USERS', async () => {
        const lists = await Promise.all(nodes('all').map(async (node) => (await node.call('ACL', 'USERS')) as string[]));
        return [...new Set(lists.flat())];
      }),
    writeConfig: (project, config) =>
      guard('write project config', async () => {
        const text = JSON.stringify(config);
        return (await client.set(projectKeys(project).config, text, 'GET')) !== text;
      }),
    configGeneration: (project) =>
      guard('read project config', async () => {
        const text = await client.get(projectKeys(project).config);
        return text === null ? undefined : (JSON.parse(text) as ProjectConfig).generation;
      }),
    stats: (project) =>
      guard('read project head', async () => {
        const head = await client.xlen(projectKeys(project).log);
        return { head, activeMounts: await countLiveMounts(client, project) };
      }),
    purge: (project) =>
      guard('delete project keys', async () => {
        let removed = 0;
        // All keys share one hash tag, so they sit on one node; scanning every primary is simpler
        // than computing the slot and stays correct across resharding.
        for (const node of nodes('master')) {
          let cursor = '0';
          do {
            const [next, keys] = await node.scan(cursor, 'MATCH', `${escapeGlob(projectKeyPrefix(project))}*`, 'COUNT', SCAN_COUNT);
            cursor = next;
            for (let i = 0; i < keys.length; i += UNLINK_BATCH) removed += await node.unlink(...keys.slice(i, i + UNLINK_BATCH));
          } while (cursor !== '0');
        }
        return removed;
      }),
    waitReady: (timeoutMs) => whenReady(client, timeoutMs),
    close: async () => {
      client.disconnect();
    },
  };
}

/** Persists ACLs where the server has an ACL file; servers without one keep them in memory, and the next reconcile restores them after a restart. */
async function saveAcl(node: Redis): Promise<void> {
  try {
    await node.call('ACL', 'SAVE');
  } catch (error) {
    if (!(error instanceof Error && /not configured to use an ACL file/i.test(error.message))) throw error;
  }
}

/** Project names are DNS labels, but the hash-tag braces and any glob character must match literally. */
function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}
