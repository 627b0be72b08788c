import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { StoreUrlError } from '../store/eventStore.js';

/**
 * Names a PEM file of the CA certificates a `rediss://` server's certificate must chain to. An
 * environment variable rather than a URL parameter, because the URL lives in a Secret while the
 * CA is mounted from another one (the chart's `redis.tls.caSecret`), and every process of a pod
 * (store, speed layer, mount registry) must trust the same CA.
 */
export const REDIS_CA_FILE_ENV = 'LHB_REDIS_CA_FILE';

/** TLS options of a `rediss://` connection: the system's CAs, or only those in LHB_REDIS_CA_FILE. */
export function redisTlsOptions(env: NodeJS.ProcessEnv = process.env): ConnectionOptions {
  const file = env[REDIS_CA_FILE_ENV];
  if (file === undefined || file === '') return {};
  try {
    return { ca: readFileSync(file) };
  } catch (error) {
    throw new StoreUrlError(`${REDIS_CA_FILE_ENV}=${file}: cannot read the Redis CA file: ${(error as Error).message}`);
  }
}
