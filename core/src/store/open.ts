import { resolve } from 'node:path';
import { StoreUrlError, type EventStore } from './eventStore.js';
import { requireStoreDirectory } from './storeDirectory.js';

/** Where the embedded store lives when nothing else is configured. */
export const DEFAULT_STORE_URL = 'file://./.lighthouse-bridge';

export interface OpenStoreOptions {
  /** Open the embedded store for reading only (another process may hold the writer lock). */
  readOnly?: boolean;
}

export type StoreUrl =
  | { kind: 'embedded'; dir: string }
  | { kind: 'redis'; nodes: Array<{ host: string; port: number }>; db: number; cluster: boolean; username?: string; password?: string; tls: boolean };

/**
 * Parses `file://DIR` (relative DIR allowed: `file://./x`), `redis://[user:pass@]HOST:PORT[/DB]`,
 * `rediss://...`, and `redis+cluster://H1:P1,H2:P2`. Throws `StoreUrlError` with the reason.
 */
export function parseStoreUrl(url: string): StoreUrl {
  const scheme = /^([a-z+]+):\/\/(.*)$/.exec(url);
  if (!scheme) throw new StoreUrlError(`invalid store URL "${url}": expected file://DIR, redis://HOST:PORT[/DB] or redis+cluster://H1:P1,H2:P2`);
  const [, proto, rest = ''] = scheme;
  if (proto === 'file') {
    if (rest === '') throw new StoreUrlError(`invalid store URL "${url}": file:// needs a directory`);
    if (rest.includes('\0')) throw new StoreUrlError(`invalid store URL: NUL in path`);
    return { kind: 'embedded', dir: resolve(rest) };
  }
  if (proto !== 'redis' && proto !== 'rediss' && proto !== 'redis+cluster') {
    throw new StoreUrlError(`unsupported store URL scheme "${proto}://": use file://, redis://, rediss:// or redis+cluster://`);
  }
  const at = rest.lastIndexOf('@');
  const auth = at >= 0 ? rest.slice(0, at) : '';
  const hostsAndPath = at >= 0 ? rest.slice(at + 1) : rest;
  const slash = hostsAndPath.indexOf('/');
  const hostList = slash >= 0 ? hostsAndPath.slice(0, slash) : hostsAndPath;
  const dbText = slash >= 0 ? hostsAndPath.slice(slash + 1) : '';
  const cluster = proto === 'redis+cluster';
  const nodes = hostList.split(',').map((hp) => parseHostPort(hp, url));
  if (nodes.length === 0 || (!cluster && nodes.length > 1)) {
    throw new StoreUrlError(`invalid store URL "${url}": redis:// takes one HOST:PORT; use redis+cluster:// for several`);
  }
  let db = 0;
  if (dbText !== '') {
    if (!/^\d{1,2}$/.test(dbText) || Number(dbText) > 15 || cluster) throw new StoreUrlError(`invalid store URL "${url}": database must be a number 0-15, and Redis Cluster has only database 0`);
    db = Number(dbText);
  }
  const parsed: StoreUrl = { kind: 'redis', nodes, db, cluster, tls: proto === 'rediss' };
  if (auth !== '') {
    const colon = auth.indexOf(':');
    const user = decodeURIComponent(colon >= 0 ? auth.slice(0, colon) : '');
    const pass = decodeURIComponent(colon >= 0 ? auth.slice(colon + 1) : auth);
    if (user !== '') parsed.username = user;
    parsed.password = pass;
  }
  return parsed;
}

function parseHostPort(text: string, url: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(text);
  const port = m?.[2] === undefined ? 6379 : Number(m[2]);
  if (!m?.[1] || port < 1 || port > 65535) throw new StoreUrlError(`invalid store URL "${url}": bad host:port "${text}"`);
  return { host: m[1].replace(/^\[|\]$/g, ''), port };
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
