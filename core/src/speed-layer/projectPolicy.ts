import type { PolicyConfig, ProjectConfig } from '../config/projectConfig.js';
import type { ProjectId } from '../events/projectId.js';
import { StoreUnavailableError } from '../store/eventStore.js';
import { clientOptions, createRedisClient, whenReady } from '../redis/client.js';
import { projectKeys } from '../redis/keys.js';
import { parseRedisUrl } from '../redis/url.js';
import { PolicyError } from './policy.js';
import { isPlainObject } from './request.js';

/**
 * The policy the operator wrote into the project's `:config` key (ADR 0003), or undefined when the
 * project has no config (standalone use: built-in rules only). Throws `StoreUnavailableError` when
 * Redis cannot be read: guessing "no policy" would silently drop the project's rules.
 */
export async function readProjectPolicy(redisUrl: string, project: ProjectId, timeoutMs = 2000): Promise<PolicyConfig | undefined> {
  const redis = createRedisClient(parseRedisUrl(redisUrl), clientOptions.failFast(timeoutMs));
  const key = projectKeys(project).config;
  try {
    if (!(await whenReady(redis, timeoutMs))) throw new StoreUnavailableError(`cannot reach Redis to read the project's policy`);
    let text: string | null;
    try {
      text = await redis.get(key);
    } catch (error) {
      throw new StoreUnavailableError(`cannot read the project's policy: ${(error as Error).message}`);
    }
    if (text === null) return undefined;
    let config: unknown;
    try {
      config = JSON.parse(text);
    } catch {
      throw new PolicyError(`the project's config at ${key} is not JSON`);
    }
    if (!isPlainObject(config)) throw new PolicyError(`the project's config at ${key} is not an object`);
    return (config as ProjectConfig).policy;
  } finally {
    redis.disconnect();
  }
}
