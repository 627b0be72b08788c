import { resolve } from 'node:path';
import { StoreUrlError, type EventStore } from './eventStore.js';
import { requireStoreDirectory } from './storeDirectory.js';
import { isRedisScheme, parseRedisUrl, type RedisUrl } from '../redis/url.js';

/** Where the embedded store lives when nothing else is configured. */
export const DEFAULT_STORE_URL = 'file://./.lighthouse-bridge';

export interface OpenStoreOptions {
  /** Open the embedded store for reading only (another process may hold the writer lock). */
  readOnly?: boolean;
}

export type StoreUrl = { kind: 'embedded'; dir: string } | RedisUrl;

/**
 * Parses `file://DIR` (relative DIR allowed: `file://./x`) and the Redis URLs `parseRedisUrl`
 * takes. Throws `StoreUrlError` with the reason.
 */
export function parseStoreUrl(url: string): StoreUrl {
  const scheme = /^([a-z+]+):\/\/(.*)$/.exec(url);
  if (!scheme) throw new StoreUrlError(`invalid store URL "${url}": expected file://DIR, redis://HOST:PORT[/DB] or redis+cluster://H1:P1,H2:P2`);
  const [, proto = '', rest = ''] = scheme;
  if (proto === 'file') {
    if (rest === '') throw new StoreUrlError(`invalid store URL "${url}": file:// needs a directory`);
    if (rest.includes('\0')) throw new StoreUrlError(`invalid store URL: NUL in path`);
    return { kind: 'embedded', dir: resolve(rest) };
  }
  if (!isRedisScheme(proto)) throw new StoreUrlError(`unsupported store URL scheme "${proto}://": use file://, redis://, rediss:// or redis+cluster://`);
  return parseRedisUrl(url);
}

/** The store URL from the flag, else `LHB_STORE`, else the embedded default. */
export function storeUrlFrom(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return flag ?? env['LHB_STORE'] ?? DEFAULT_STORE_URL;
}

/** Opens the backend the URL names, with its appends and reads timed for `/metrics`. */
export async function openStore(url: string, options: OpenStoreOptions = {}): Promise<EventStore> {
  const parsed = parseStoreUrl(url);
  const { instrumentStore } = await import('../observability/instrumentedStore.js');
  if (parsed.kind === 'embedded') {
    await requireStoreDirectory(parsed.dir);
    const { openEmbeddedStore } = await import('./embedded/embeddedStore.js');
    return instrumentStore(await openEmbeddedStore({ dir: parsed.dir, readOnly: options.readOnly ?? false }));
  }
  const { openRedisStore } = await import('./redis/redisStore.js');
  return instrumentStore(await openRedisStore(parsed));
}
