export { clientOptions, createRedisClient, whenReady, type RedisClient } from './client.js';
export { projectKeyPrefix, projectKeys, type ProjectKeys } from './keys.js';
export { countLiveMounts, mountMember, refreshMounts, removeMount } from './mounts.js';
export type { RedisUrl } from './url.js';
