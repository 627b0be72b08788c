export { clientOptions, createRedisClient, whenReady, type RedisClient } from './client.js';
export { REDIS_CA_FILE_ENV, redisTlsOptions } from './tls.js';
export { projectKeyPrefix, projectKeys, type ProjectKeys } from './keys.js';
export { countLiveMounts, mountMember, refreshMounts, removeMount } from './mounts.js';
export type { RedisUrl } from './url.js';
