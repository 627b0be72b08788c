import type { ProjectId } from '../events/projectId.js';
import type { RedisClient } from './client.js';
import { projectKeys } from './keys.js';

/**
 * The registry of a project's active mounts (ADR 0063): a sorted set at `lhb:{ns/name}:mounts`
 * whose members are `<node>:<target path>` and whose scores are the time (ms, Redis clock) at which
 * the entry expires unless its node plugin refreshes it. A node that dies stops refreshing, so its
 * entries stop counting within one expiry without anyone cleaning up after it. Redis's own clock
 * scores and counts, so clock skew between nodes and the operator does not matter.
 */
export function mountMember(nodeId: string, target: string): string {
  return `${nodeId}:${target}`;
}

const NOW_MS = "local t = redis.call('TIME'); local now = t[1] * 1000 + math.floor(t[2] / 1000)";

/**
 * KEYS[1] the registry; ARGV[1] the expiry in ms; ARGV[2..] members. Also drops entries already
 * expired (other nodes' included), and lets the key itself expire with its last live entry.
 */
const REFRESH = `${NOW_MS}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local expiry = now + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], expiry, ARGV[i]) end
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then redis.call('PEXPIREAT', KEYS[1], last[2]) end
return redis.call('ZCARD', KEYS[1])`;

const COUNT = `${NOW_MS}
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')`;

/** Records (or keeps alive) `members` of one project for `expiryMs` from now. */
export async function refreshMounts(client: RedisClient, project: ProjectId, members: readonly string[], expiryMs: number): Promise<void> {
  await client.eval(REFRESH, 1, projectKeys(project).mounts, String(Math.ceil(expiryMs)), ...members);
}

export async function removeMount(client: RedisClient, project: ProjectId, member: string): Promise<void> {
  await client.zrem(projectKeys(project).mounts, member);
}

/** Entries whose node refreshed them within the expiry; a registry of another type counts 0. */
export async function countLiveMounts(client: RedisClient, project: ProjectId): Promise<number> {
  const key = projectKeys(project).mounts;
  if ((await client.type(key)) !== 'zset') return 0;
  return Number(await client.eval(COUNT, 1, key));
}
